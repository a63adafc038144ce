# The two commands of the README:
#   make run   install what is missing, configure, build, run the bundled sample
#   make test  install what is missing, configure, build, run every suite
#              (main build + ASan/UBSan build); last line: "N passed, N failed"
BUILD      ?= build
ASAN_BUILD ?= build-asan
MESON_ARGS ?= --werror
NINJA      ?= ninja
JOBS       ?= $(shell nproc)

.PHONY: all deps configure build run test test-main test-asan bench fuzz clean

all: build

deps:
	@bash deploy/install-deps.sh --if-missing

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_ARGS)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) $(MESON_ARGS) -Dsanitize=address,undefined -Db_lundef=false

configure: deps $(BUILD)/build.ninja

build: configure
	$(NINJA) -C $(BUILD) -j $(JOBS)

SAMPLE = tests/data/sample
CAPTURES = tests/data/captures

run: build
	./$(BUILD)/wireseal version
	./$(BUILD)/wireseal verify --zone $(SAMPLE)/zone.db --authserv-id sample.wireseal $(SAMPLE)/*.eml
	./$(BUILD)/wireseal verify --json --zone $(SAMPLE)/zone.db --authserv-id sample.wireseal $(SAMPLE)/*.eml
	./$(BUILD)/wireseal replay --json --zone $(SAMPLE)/zone.db --authserv-id sample.wireseal $(CAPTURES)/sample.pcap

test-main: build
	-meson test -C $(BUILD) --no-rebuild --print-errorlogs --num-processes $(JOBS)

test-asan: deps $(ASAN_BUILD)/build.ninja
	$(NINJA) -C $(ASAN_BUILD) -j $(JOBS)
	-meson test -C $(ASAN_BUILD) --no-rebuild --print-errorlogs --num-processes $(JOBS) \
		--suite unit --suite conformance --suite fuzz

test: test-main test-asan
	@/usr/bin/python3 tests/summary.py $(BUILD) $(ASAN_BUILD)

# A measurement, never a gate: see BENCHMARKS.md. BENCH_QUICK=1 for a smoke run.
bench: build
	BENCH_BUILD=$(BUILD) bash bench/run.sh

fuzz: deps
	CC=clang meson setup build-fuzz -Dfuzz=true --werror 2>/dev/null || true
	$(NINJA) -C build-fuzz

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz

/* smtpp: never crashes, and what it reports (events, message bytes, counters)
 * does not depend on how the bytes were split. Input: byte 0 seeds the
 * split; then records [kind][len][len bytes]: kind bit 0 = server side,
 * bit 1 = a gap of len bytes instead of bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FNV-1a over every event, so two runs compare by one number */
static void
mix(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		*h = (*h ^ b[i]) * 0x100000001b3ull;
}

static void
mix_u(uint64_t *h, uint64_t v)
{
	mix(h, &v, sizeof(v));
}

static void
ev_command(void *arg, const struct smtpp_cmd *c)
{
	mix_u(arg, 1000 + c->verb);
	mix(arg, c->arg, c->arg_len);
	mix_u(arg, c->bdat_size * 4 + c->bdat_last * 2 + c->over_limit);
}

static void
ev_reply(void *arg, const struct smtpp_reply *r)
{
	mix_u(arg, 2000 + r->code * 64 + r->verb);
	mix(arg, r->text, r->text_len);
	mix_u(arg, r->lines);
}

static void
ev_begin(void *arg, enum smtpp_body k)
{
	mix_u(arg, 3000 + k);
}

static void
ev_data(void *arg, const uint8_t *p, size_t len)
{
	if (len == 0)
		abort();
	mix(arg, p, len);
}

static void
ev_gap(void *arg, uint64_t len)
{
	mix_u(arg, 4000 + len);
}

static void
ev_end(void *arg, enum smtpp_msg_end how)
{
	mix_u(arg, 5000 + how);
}

static void
ev_tls(void *arg)
{
	mix_u(arg, 6000);
}

static const struct smtpp_ops ops = {ev_command, ev_reply, ev_begin, ev_data,
				     ev_gap,     ev_end,   ev_tls};

static uint64_t
run(const uint8_t *d, size_t n, unsigned seed, struct smtpp_counters *c)
{
	uint64_t h = 0xcbf29ce484222325ull;
	struct smtpp p;
	smtpp_init(&p, &ops, &h, seed & 1);
	size_t i = 0;
	while (i + 2 <= n) {
		uint8_t kind = d[i];
		size_t len = d[i + 1];
		i += 2;
		enum smtpp_dir dir = (kind & 1) ? SMTPP_S2C : SMTPP_C2S;
		if (kind & 2) {
			smtpp_gap(&p, dir, len);
			continue;
		}
		if (len > n - i)
			len = n - i;
		for (size_t off = 0; off < len;) {
			size_t k = seed > 1 ? 1 + (seed = seed * 1103515245u + 12345u) % 17 : len - off;
			if (k > len - off)
				k = len - off;
			smtpp_feed(&p, dir, d + i + off, k);
			off += k;
		}
		i += len;
	}
	smtpp_end(&p);
	*c = p.c;
	smtpp_free(&p);
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mid = data[0] & 1;
	unsigned seed = (data[0] | 2u) & ~1u;
	struct smtpp_counters ca, cb;
	uint64_t a = run(data + 1, size - 1, mid, &ca);
	uint64_t b = run(data + 1, size - 1, seed | mid, &cb);
	if (a != b || memcmp(&ca, &cb, sizeof(ca)) != 0)
		abort();
	return 0;
}

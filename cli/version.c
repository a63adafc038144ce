/* `wireseal version [--features]`: what we are, what we run on, what we link. */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <hs.h>
#include <libpsl.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <pcap/pcap.h>
#include <rte_version.h>
#include <sodium.h>
#include <unbound.h>
#include <yaml.h>
#define NO_COMPAT_IMB_API_053
#include <intel-ipsec-mb.h>

#include "cpu.h"
#include "ws-config.h"

#if WS_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

static const char *
jemalloc_version(void)
{
#if WS_WITH_JEMALLOC
	const char *v = NULL;
	size_t sz = sizeof(v);
	if (mallctl("version", (void *)&v, &sz, NULL, 0) == 0 && v)
		return v;
	return "linked, version unknown";
#else
	return "not linked (sanitizer build)";
#endif
}

int
cmd_version(int argc, char **argv)
{
	int features = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--features") == 0) {
			features = 1;
		} else {
			fprintf(stderr, "wireseal version: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	printf("wireseal %s\n", WS_VERSION);
	if (!features)
		return 0;

	struct hw_cpu cpu;
	hw_cpu_detect(&cpu);
	char flags[512];
	hw_cpu_format(&cpu, flags, sizeof(flags));
	printf("cpu: %s family %u model %u\n", cpu.vendor[0] ? cpu.vendor : "unknown", cpu.family,
	       cpu.model);
	printf("cpu features: %s\n", flags[0] ? flags : "(none)");
	printf("libraries:\n");
	printf("  dpdk           %s\n", rte_version());
	printf("  intel-ipsec-mb %s\n", imb_get_version_str());
	printf("  openssl        %s\n", OpenSSL_version(OPENSSL_VERSION));
	printf("  libsodium      %s\n", sodium_version_string());
	printf("  hyperscan      %s\n", hs_version());
	printf("  jemalloc       %s\n", jemalloc_version());
	printf("  libunbound     %s\n", ub_version());
	printf("  libcurl        %s\n", curl_version());
	printf("  libpsl         %s\n", psl_get_version());
	printf("  libevent       %s\n", event_get_version());
	printf("  libmicrohttpd  %s\n", MHD_get_version());
	printf("  libyaml        %s\n", yaml_get_version_string());
	printf("  libpcap        %s\n", pcap_lib_version());
	return 0;
}

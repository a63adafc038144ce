/* bench-pcap-read CAPTURE [REPEAT]: the raw read rate of a capture through
 * libpcap (pcap_next_ex, touching every byte once), the ceiling beside which
 * `wireseal replay`'s rate is read (bench/replay.sh). */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench-pcap-read CAPTURE [REPEAT]\n");
		return 2;
	}
	int repeat = argc > 2 ? atoi(argv[2]) : 1;
	uint64_t pk = 0, by = 0, sum = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int r = 0; r < repeat; r++) {
		char err[PCAP_ERRBUF_SIZE];
		pcap_t *p = pcap_open_offline(argv[1], err);
		if (!p) {
			fprintf(stderr, "bench-pcap-read: %s\n", err);
			return 1;
		}
		struct pcap_pkthdr *h;
		const u_char *d;
		while (pcap_next_ex(p, &h, &d) == 1) {
			pk++;
			by += h->caplen;
			for (uint32_t i = 0; i < h->caplen; i += 64)
				sum += d[i];
		}
		pcap_close(p);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("pcap-read: %llu packets, %llu bytes in %.3f s: %.0f packets/s, %.3f Gbit/s (check "
	       "%llu)\n",
	       (unsigned long long)pk, (unsigned long long)by, s, (double)pk / s,
	       (double)by * 8 / s / 1e9, (unsigned long long)(sum & 0xff));
	return 0;
}

/* pkt: never reads outside the frame, and what it returns is consistent:
 * a TCP payload lies inside the frame, and parsing the IP part alone gives
 * the same answer as parsing the whole Ethernet frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy of exactly size bytes so ASan sees any over-read */
	uint8_t *f = malloc(size ? size : 1);
	if (!f)
		return 0;
	memcpy(f, data, size);
	struct pkt_info a, b;
	enum pkt_reason r = pkt_parse(f, size, &a);
	if (r >= PKT_REASON_COUNT || a.reason != r)
		abort();
	if (r == PKT_TCP) {
		if (a.payload < f || a.payload + a.payload_len > f + size)
			abort();
		enum pkt_reason r2 = pkt_parse_ip(f + a.l3_off, size - a.l3_off, &b);
		if (r2 != PKT_TCP || b.payload != a.payload || b.payload_len != a.payload_len ||
		    b.seq != a.seq || b.sport != a.sport || memcmp(a.src, b.src, 16) != 0)
			abort();
	}
	(void)pkt_parse_ip(f, size, &b);
	free(f);
	return 0;
}

/*
 * fuzz_dnscache: dnscache parses nothing (it copies answers), so this target
 * drives it with operation sequences instead: each 4-byte step is an op
 * (put / get / attach / advance time), a name out of a small set, a type,
 * and a TTL or record count. It checks against a shadow model that a fresh
 * entry is returned exactly while now < put time + TTL (with the caps), that
 * the entry count never passes the bound, that the counters add up, and
 * (under ASan) that copies and evictions leak or reuse nothing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dnscache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NNAMES 8
#define MAX_ENTRIES 4

static const char *const names[NNAMES] = {
	"a.example", "B.example", "c.example", "_dmarc.example", "x._domainkey.example",
	"example", "d.e.f.example", "long-name-for-the-cache.example",
};

static const enum ws_dns_type types[4] = {WS_DNS_TXT, WS_DNS_A, WS_DNS_MX, WS_DNS_PTR};

static struct ws_dns_answer *
make(enum ws_dns_type t, uint8_t st, uint32_t ttl, unsigned count)
{
	struct ws_dns_answer *a = calloc(1, sizeof(*a));
	if (!a)
		abort();
	a->status = (enum ws_dns_status)((st & 7) % 5);
	a->ttl = ttl;
	if (a->status != WS_DNS_OK)
		return a;
	a->rrs = calloc(count ? count : 1, sizeof(*a->rrs));
	if (!a->rrs)
		abort();
	a->count = count;
	for (unsigned i = 0; i < count; i++) {
		struct ws_dns_rr *rr = &a->rrs[i];
		rr->type = t;
		switch (t) {
		case WS_DNS_TXT:
			rr->u.txt.data = (uint8_t *)strdup("v=spf1 -all");
			rr->u.txt.len = 11;
			rr->u.txt.nstrings = 1;
			break;
		case WS_DNS_MX:
			rr->u.mx.pref = (uint16_t)i;
			rr->u.mx.host = strdup("mx.example");
			break;
		case WS_DNS_PTR:
		case WS_DNS_CNAME:
			rr->u.name = strdup("host.example");
			break;
		case WS_DNS_A:
		case WS_DNS_AAAA:
			memset(rr->u.aaaa, (int)i, sizeof(rr->u.aaaa));
			break;
		}
	}
	return a;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dnscache_config cfg = {.max_entries = MAX_ENTRIES, .max_ttl = 50, .neg_max_ttl = 20,
				      .min_ttl = 1};
	struct dnscache *c = dnscache_new(&cfg);
	if (!c)
		return 0;
	int64_t now = 0;
	struct model {
		bool set;
		int64_t expires;
		enum ws_dns_status status;
		size_t count;
	} shadow[NNAMES][4];
	memset(shadow, 0, sizeof(shadow));
	for (size_t off = 0; off + 4 <= size; off += 4) {
		uint8_t op = data[off] & 3, ni = data[off + 1] % NNAMES;
		unsigned ti = (data[off + 1] >> 3) & 3;
		enum ws_dns_type t = types[ti];
		uint8_t arg = data[off + 2], st = data[off + 3];
		const char *name = names[ni];
		switch (op) {
		case 0: { /* put */
			struct ws_dns_answer *a = make(t, st, arg, st >> 3);
			int r = dnscache_put(c, name, t, a, now);
			bool cacheable = a->status == WS_DNS_OK || a->status == WS_DNS_NXDOMAIN ||
					 a->status == WS_DNS_NODATA;
			if ((r == 0) != cacheable)
				abort();
			if (r == 0) {
				uint32_t cap = a->status == WS_DNS_OK ? 50 : 20;
				uint32_t ttl = a->ttl > cap ? cap : a->ttl < 1 ? 1 : a->ttl;
				shadow[ni][ti].expires = now + ttl;
				shadow[ni][ti].status = a->status;
				shadow[ni][ti].count = a->count;
				shadow[ni][ti].set = true;
			}
			ws_dns_answer_free(a);
			break;
		}
		case 1: { /* get: a hit must be what the model says is fresh (a miss
			   may also be an eviction) */
			const struct ws_dns_answer *g = dnscache_get(c, name, t, now);
			const struct model *m = &shadow[ni][ti];
			if (g && (!m->set || now >= m->expires || g->status != m->status ||
				  g->count != m->count))
				abort();
			break;
		}
		case 2: { /* attach */
			void *obj = malloc(8);
			if (dnscache_attach(c, name, t, obj, free) != 0)
				free(obj);
			break;
		}
		case 3: /* time passes */
			now += arg;
			break;
		}
		struct dnscache_stats s;
		dnscache_stats(c, &s);
		if (s.entries > MAX_ENTRIES || s.evictions + s.expired + s.entries > s.inserts)
			abort();
	}
	dnscache_free(c);
	return 0;
}

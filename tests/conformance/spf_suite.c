/*
 * Runs an openspf/pyspf SPF conformance file (a YAML stream, one scenario per
 * document) against auth/spf: each scenario's zonedata answers the
 * evaluator's queries (spf_zone.c), every test's result must be one of the
 * expected ones and, where given, the explanation must match (the default
 * explanation is configured to the literal "DEFAULT", as the suite expects).
 *
 *   spf_suite FILE [--expect N]      run over the in-memory zone table; FILE
 *                                    relative to $WS_SHARED_DIR/conformance/spf/
 *                                    unless it has a '/'
 *   spf_suite FILE --emit-zones DIR  write each scenario as DIR/<stem>-NN.zone
 *   spf_suite FILE --emit-nsd DIR    write each scenario as the zone sNN.wsspf
 *                                    (every name suffixed) for one nsd, with
 *                                    DIR/zones (ORIGIN=FILE lines) and
 *                                    DIR/blackholes (TIMEOUT names) and
 *                                    DIR/via-nsd (zone names below those) for dnsd.py
 *   spf_suite FILE --nsd [--timeout-ms MS]
 *                                    resolve through ws_dns with the unbound.conf
 *                                    in $WS_DNSD_UNBOUND_CONF (spf_nsd.py runs
 *                                    this inside tests/harness/dnsd.py)
 *   spf_suite FILE --embedded DIR    resolve through ws_dns in embedded mode,
 *                                    one master file per scenario written to DIR
 *   [--expect-in-memory N]           with --nsd/--embedded: exactly N tests
 *                                    could not be expressed in real DNS
 *
 * With --nsd or --embedded, each test first runs over the in-memory table with
 * every query checked against what the DNS path can express. A test that
 * needs something it cannot (see inexpressible()) is reported as IN-MEMORY
 * with the reason and decided by the in-memory run; every other test is
 * decided by the DNS path alone.
 *
 * Exit status: 0 when every test passed (and N tests ran, with --expect).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "dns.h"
#include "spf.h"
#include "spf_zone.h"

#define MAX_QUERIES 1000 /* a runaway evaluator is a failure, not a hang */
#define FIXED_NOW 1700000000
#define NSD_TLD "wsspf"  /* scenario N is the zone sNN.wsspf on the one nsd */
#define DEFAULT_TIMEOUT_MS 300

struct counts {
	unsigned total, passed, accepted, failed, in_memory;
};

enum mode { MODE_MEMORY, MODE_NSD, MODE_EMBEDDED };

struct runner {
	enum mode mode;
	struct ws_dns *dns;
	char suffix[32]; /* MODE_NSD: "sNN.wsspf" */
	const struct spfz_zone *z;
};

static yaml_node_t *
map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

/* A scalar's text (YAML may type it as a number: read it as text anyway). */
static const char *
text_of(yaml_node_t *n)
{
	return (n && n->type == YAML_SCALAR_NODE) ? (const char *)n->data.scalar.value : NULL;
}

/* The spec reference as text: YAML gives a string, a number (3.3) or, in the
 * 4408 file, a list of them. */
static void
spec_text(yaml_document_t *doc, yaml_node_t *n, char *out, size_t cap)
{
	out[0] = '\0';
	if (n && n->type == YAML_SCALAR_NODE) {
		snprintf(out, cap, "%s", text_of(n));
		return;
	}
	size_t used = 0;
	for (yaml_node_item_t *it = n && n->type == YAML_SEQUENCE_NODE
					    ? n->data.sequence.items.start
					    : NULL;
	     it && it < n->data.sequence.items.top; it++) {
		const char *s = text_of(yaml_document_get_node(doc, *it));
		int w = snprintf(out + used, cap - used, "%s%s", used ? "," : "", s ? s : "?");
		if (w < 0 || (size_t)w >= cap - used)
			break;
		used += (size_t)w;
	}
}

/* Is r one of the expected results (a scalar or a list)? Sets *preferred. */
static bool
result_expected(yaml_document_t *doc, yaml_node_t *exp, const char *r, bool *preferred,
		char *shown, size_t shownlen)
{
	*preferred = false;
	shown[0] = '\0';
	if (exp && exp->type == YAML_SCALAR_NODE) {
		snprintf(shown, shownlen, "%s", text_of(exp));
		*preferred = strcmp(text_of(exp), r) == 0;
		return *preferred;
	}
	if (!exp || exp->type != YAML_SEQUENCE_NODE)
		return false;
	bool any = false;
	size_t used = 0;
	for (yaml_node_item_t *it = exp->data.sequence.items.start; it < exp->data.sequence.items.top;
	     it++) {
		const char *s = text_of(yaml_document_get_node(doc, *it));
		if (!s)
			continue;
		int w = snprintf(shown + used, shownlen - used, "%s%s", used ? "|" : "", s);
		if (w > 0 && (size_t)w < shownlen - used)
			used += (size_t)w;
		if (strcmp(s, r) == 0) {
			any = true;
			if (it == exp->data.sequence.items.start)
				*preferred = true;
		}
	}
	return any;
}

/* The name an MX, PTR or CNAME record points at; NULL for other types. */
static const char *
rr_target(const struct ws_dns_rr *rr)
{
	switch (rr->type) {
	case WS_DNS_MX:
		return rr->u.mx.host;
	case WS_DNS_PTR:
	case WS_DNS_CNAME:
		return rr->u.name;
	case WS_DNS_A:
	case WS_DNS_AAAA:
	case WS_DNS_TXT:
		break;
	}
	return NULL;
}

/*
 * Why the DNS path of this runner cannot give the answer the suite wants for
 * this query (a is the in-memory answer), or NULL when it can.
 */
static const char *
inexpressible(const struct runner *r, const char *name, const struct ws_dns_answer *a)
{
	bool timeout = a->status == WS_DNS_TEMPFAIL && strcmp(a->why, "timeout") == 0;
	for (size_t i = 0; i < a->count; i++)
		if (a->rrs[i].type == WS_DNS_TXT && a->rrs[i].u.txt.nstrings == 0)
			return "a TXT RR with no character-string: libunbound answers SERVFAIL";
	if (r->mode == MODE_EMBEDDED && spfz_name_needs_escape(name))
		return "a name with a blank: auth/zonefile (the embedded loader) takes no escapes "
		       "in names";
	for (size_t i = 0; r->mode == MODE_EMBEDDED && i < a->count; i++) {
		const char *t = rr_target(&a->rrs[i]);
		if (t && spfz_name_needs_escape(t))
			return "an answer names a target with a blank: auth/zonefile takes no "
			       "escapes in names";
	}
	if (r->mode == MODE_EMBEDDED)
		return timeout ? "TIMEOUT: a master file cannot make a query time out" : NULL;
	if (strlen(name) + 1 + strlen(r->suffix) > 253)
		return "the query name is longer than 253 octets with the scenario suffix";
	bool under = spfz_blackholed(r->z, name);
	if (under && !timeout)
		return "a TIMEOUT name that must answer some types: the blackhole times out "
		       "every type (and the names below it that the zone does not have)";
	if (timeout && !under)
		return "TIMEOUT reached through a CNAME: nsd answers the target's NODATA itself";
	return NULL;
}

/* The in-memory run; with r (a DNS mode), *reason gets the first query the
 * DNS path could not express. Returns NULL on an internal error. */
static struct spf_eval *
run_eval_mem(const struct spfz_zone *z, const struct spf_params *p, const struct runner *r,
	     const char **reason, char *err, size_t errlen)
{
	struct spf_eval *ev = spf_eval_new_mailfrom(p);
	if (!ev) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct spf_query q;
	unsigned nq = 0;
	while (spf_step(ev, &q) == SPF_STEP_NEED_DNS) {
		if (++nq > MAX_QUERIES) {
			snprintf(err, errlen, "more than %d queries", MAX_QUERIES);
			spf_eval_free(ev);
			return NULL;
		}
		struct ws_dns_answer a;
		if (spfz_resolve(z, q.name, q.type, &a) != 0) {
			snprintf(err, errlen, "zone: out of memory");
			spf_eval_free(ev);
			return NULL;
		}
		if (r && !*reason)
			*reason = inexpressible(r, q.name, &a);
		spf_answer(ev, &a);
		spfz_answer_free(&a);
	}
	return ev;
}

/* Takes ".suffix" off a name in an answer (nsd serves the suffixed zone). */
static void
strip_suffix(char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	if (n > k && name[n - k - 1] == '.' && strcasecmp(name + n - k, suffix) == 0)
		name[n - k - 1] = '\0';
	else if (n == k && strcasecmp(name, suffix) == 0)
		name[0] = '\0';
}

/* The run through ws_dns (nsd or embedded). NULL on an internal error. */
static struct spf_eval *
run_eval_dns(const struct runner *r, const struct spf_params *p, char *err, size_t errlen)
{
	struct spf_eval *ev = spf_eval_new_mailfrom(p);
	if (!ev) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct spf_query q;
	unsigned nq = 0;
	while (spf_step(ev, &q) == SPF_STEP_NEED_DNS) {
		char name[600];
		if (++nq > MAX_QUERIES) {
			snprintf(err, errlen, "more than %d queries", MAX_QUERIES);
			goto fail;
		}
		if (r->mode == MODE_NSD)
			snprintf(name, sizeof(name), "%s.%s", q.name, r->suffix);
		else
			snprintf(name, sizeof(name), "%s", q.name);
		struct ws_dns_answer *a = ws_dns_query(r->dns, name, q.type);
		if (!a) {
			snprintf(err, errlen, "ws_dns: out of memory");
			goto fail;
		}
		for (size_t i = 0; r->mode == MODE_NSD && i < a->count; i++) {
			struct ws_dns_rr *rr = &a->rrs[i];
			if (rr->type == WS_DNS_MX)
				strip_suffix(rr->u.mx.host, r->suffix);
			else if (rr->type == WS_DNS_PTR || rr->type == WS_DNS_CNAME)
				strip_suffix(rr->u.name, r->suffix);
		}
		spf_answer(ev, a);
		ws_dns_answer_free(a);
	}
	return ev;
fail:
	spf_eval_free(ev);
	return NULL;
}

static void
run_test(const char *file, yaml_document_t *doc, const char *id, yaml_node_t *t,
	 const struct runner *r, struct counts *c)
{
	const struct spfz_zone *z = r->z;
	const char *host = text_of(map_get(doc, t, "host"));
	const char *mailfrom = text_of(map_get(doc, t, "mailfrom"));
	const char *helo = text_of(map_get(doc, t, "helo"));
	const char *want_exp = text_of(map_get(doc, t, "explanation"));
	c->total++;
	struct spf_params p = {.helo = helo ? helo : "", .mail_from = mailfrom ? mailfrom : "",
			       .receiver = NULL, .now = FIXED_NOW, .default_exp = "DEFAULT"};
	if (!host || spf_ip_parse(host, &p.ip) != 0) {
		printf("FAIL %s %s: bad host '%s' in the test\n", file, id, host ? host : "");
		c->failed++;
		return;
	}
	char err[128];
	const char *reason = NULL;
	struct spf_eval *ev = run_eval_mem(z, &p, r->mode == MODE_MEMORY ? NULL : r, &reason, err,
					   sizeof(err));
	if (ev && r->mode != MODE_MEMORY && !reason) {
		spf_eval_free(ev); /* expressible: the DNS path alone decides */
		ev = run_eval_dns(r, &p, err, sizeof(err));
	} else if (ev && reason) {
		printf("IN-MEMORY %s %s: %s\n", file, id, reason);
		c->in_memory++;
	}
	if (!ev) {
		printf("FAIL %s %s: %s\n", file, id, err);
		c->failed++;
		return;
	}
	const struct spf_outcome *o = spf_outcome(ev);
	const char *got = spf_result_name(o->result);
	bool preferred;
	char shown[128], spec[64];
	spec_text(doc, map_get(doc, t, "spec"), spec, sizeof(spec));
	bool ok = result_expected(doc, map_get(doc, t, "result"), got, &preferred, shown,
				  sizeof(shown));
	if (!ok) {
		printf("FAIL %s %s [%s]: expected %s, got %s (%s)\n", file, id, spec, shown, got,
		       o->reason);
		c->failed++;
	} else if (want_exp && o->result == SPF_RESULT_FAIL && strcmp(want_exp, o->explanation)) {
		printf("FAIL %s %s [%s]: explanation \"%s\", expected \"%s\"\n", file, id, spec,
		       o->explanation, want_exp);
		c->failed++;
	} else if (!preferred) {
		printf("ACCEPTED %s %s [%s]: got %s, preferred %s (%s)\n", file, id, spec, got,
		       shown, o->reason);
		c->accepted++;
	} else {
		c->passed++;
	}
	spf_eval_free(ev);
}

/* Writes one scenario's zone to path; with a suffix also the SOA, NS and
 * the name server's address that nsd needs at the apex. */
static int
write_zone(const char *path, const struct spfz_zone *z, const char *desc, const char *suffix,
	   unsigned flags)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "spf_suite: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "; %s\n", desc ? desc : "");
	int rc = spfz_emit(z, f, suffix, flags);
	if (suffix)
		fprintf(f, "%s. IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n"
			   "%s. IN NS ns.%s.\nns.%s. IN A 127.0.0.1\n",
			suffix, suffix, suffix, suffix, suffix, suffix);
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

static int
emit_zone(const char *dir, const char *stem, unsigned idx, const struct spfz_zone *z,
	  const char *desc)
{
	char path[4096];
	int w = snprintf(path, sizeof(path), "%s/%s-%02u.zone", dir, stem, idx);
	if (w < 0 || (size_t)w >= sizeof(path))
		return -1;
	return write_zone(path, z, desc, NULL, 0);
}

/* --emit-nsd: DIR/sNN.zone plus a line in DIR/zones and the TIMEOUT names
 * in DIR/blackholes (both appended: one run per YAML file writes them). */
static int
emit_nsd(const char *dir, unsigned idx, const struct spfz_zone *z, const char *desc, FILE *zones,
	 FILE *blackholes, FILE *via)
{
	char suffix[32], path[4096];
	snprintf(suffix, sizeof(suffix), "s%02u.%s", idx, NSD_TLD);
	int w = snprintf(path, sizeof(path), "%s/s%02u.zone", dir, idx);
	if (w < 0 || (size_t)w >= sizeof(path) || write_zone(path, z, desc, suffix, 0) != 0)
		return -1;
	fprintf(zones, "%s=%s\n", suffix, path);
	const char *t;
	for (size_t i = 0; (t = spfz_timeout_name(z, i)); i++)
		fprintf(blackholes, "%s.%s\n", t, suffix);
	for (size_t i = 0; (t = spfz_below_timeout_name(z, i)); i++)
		fprintf(via, "%s.%s\n", t, suffix);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *file = NULL, *emit_dir = NULL, *nsd_dir = NULL, *emb_dir = NULL;
	long expect = -1, expect_mem = -1;
	unsigned timeout_ms = DEFAULT_TIMEOUT_MS;
	struct runner r = {.mode = MODE_MEMORY};
	static const char usage_text[] =
		"usage: spf_suite FILE [--expect N] [--emit-zones DIR | --emit-nsd DIR | "
		"--nsd [--timeout-ms MS] | --embedded DIR] [--expect-in-memory N]\n";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
			expect = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--expect-in-memory") == 0 && i + 1 < argc)
			expect_mem = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--emit-zones") == 0 && i + 1 < argc)
			emit_dir = argv[++i];
		else if (strcmp(argv[i], "--emit-nsd") == 0 && i + 1 < argc)
			nsd_dir = argv[++i];
		else if (strcmp(argv[i], "--embedded") == 0 && i + 1 < argc) {
			emb_dir = argv[++i];
			r.mode = MODE_EMBEDDED;
		} else if (strcmp(argv[i], "--nsd") == 0)
			r.mode = MODE_NSD;
		else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
			timeout_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!file)
			file = argv[i];
		else {
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (!file) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (r.mode == MODE_NSD) {
		const char *conf = getenv("WS_DNSD_UNBOUND_CONF");
		if (!conf) {
			fprintf(stderr, "spf_suite: --nsd needs WS_DNSD_UNBOUND_CONF (run it "
					"through tests/conformance/spf_nsd.py)\n");
			return 1;
		}
		char why[256];
		struct ws_dns_config dc = {.config_file = conf, .timeout_ms = timeout_ms};
		if (!(r.dns = ws_dns_new(&dc, why, sizeof(why)))) {
			fprintf(stderr, "spf_suite: resolver: %s\n", why);
			return 1;
		}
	}
	char path[4096];
	const char *shared = getenv("WS_SHARED_DIR");
	if (strchr(file, '/') || !shared)
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "%s/conformance/spf/%s", shared, file);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char stem[4096];
	snprintf(stem, sizeof(stem), "%s", base);
	char *dot = strstr(stem, ".yml");
	if (dot)
		*dot = '\0';

	FILE *in = fopen(path, "rb");
	if (!in) {
		fprintf(stderr, "spf_suite: %s: %s\n", path, strerror(errno));
		return 1;
	}
	const char *mk = emit_dir ? emit_dir : nsd_dir ? nsd_dir : emb_dir;
	if (mk && mkdir(mk, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "spf_suite: %s: %s\n", mk, strerror(errno));
		fclose(in);
		ws_dns_free(r.dns);
		return 1;
	}
	FILE *zones = NULL, *blackholes = NULL, *via = NULL;
	if (nsd_dir) {
		char p1[4200], p2[4200], p3[4200];
		snprintf(p1, sizeof(p1), "%s/zones", nsd_dir);
		snprintf(p2, sizeof(p2), "%s/blackholes", nsd_dir);
		snprintf(p3, sizeof(p3), "%s/via-nsd", nsd_dir);
		zones = fopen(p1, "w");
		blackholes = fopen(p2, "w");
		via = fopen(p3, "w");
		if (!zones || !blackholes || !via) {
			fprintf(stderr, "spf_suite: %s: %s\n", nsd_dir, strerror(errno));
			if (zones)
				fclose(zones);
			if (blackholes)
				fclose(blackholes);
			if (via)
				fclose(via);
			fclose(in);
			return 1;
		}
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, in);
	struct counts c = {0};
	unsigned scenarios = 0;
	int status = 0;
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			fprintf(stderr, "spf_suite: %s: YAML error: %s (line %zu)\n", path,
				parser.problem ? parser.problem : "?", parser.problem_mark.line + 1);
			status = 1;
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root) { /* end of stream */
			yaml_document_delete(&doc);
			break;
		}
		scenarios++;
		char why[160] = "";
		struct spfz_zone *z = spfz_from_yaml(&doc, map_get(&doc, root, "zonedata"), why,
						     sizeof(why));
		yaml_node_t *tests = map_get(&doc, root, "tests");
		const char *desc = text_of(map_get(&doc, root, "description"));
		if (!z || !tests || tests->type != YAML_MAPPING_NODE) {
			fprintf(stderr, "spf_suite: scenario %u (%s): %s\n", scenarios,
				desc ? desc : "?", z ? "no tests" : why);
			spfz_free(z);
			yaml_document_delete(&doc);
			status = 1;
			break;
		}
		if (emit_dir) {
			if (emit_zone(emit_dir, stem, scenarios, z, desc) != 0)
				status = 1;
		} else if (nsd_dir) {
			if (emit_nsd(nsd_dir, scenarios, z, desc, zones, blackholes, via) != 0)
				status = 1;
		} else {
			r.z = z;
			snprintf(r.suffix, sizeof(r.suffix), "s%02u.%s", scenarios, NSD_TLD);
			if (r.mode == MODE_EMBEDDED) {
				/* one embedded resolver per scenario, on its own master file */
				char zp[8400], dwhy[256] = "cannot write it";
				snprintf(zp, sizeof(zp), "%s/%s-%02u.zone", emb_dir, stem, scenarios);
				struct ws_dns_config dc = {.zone_file = zp, .timeout_ms = timeout_ms};
				if (write_zone(zp, z, desc, NULL, SPFZ_EMIT_NO_ESCAPES) != 0 ||
				    !(r.dns = ws_dns_new(&dc, dwhy, sizeof(dwhy)))) {
					fprintf(stderr, "spf_suite: scenario %u: embedded zone %s: %s\n",
						scenarios, zp, dwhy);
					status = 1;
				}
			}
			for (yaml_node_pair_t *p = tests->data.mapping.pairs.start;
			     (r.mode != MODE_EMBEDDED || r.dns) && p < tests->data.mapping.pairs.top;
			     p++)
				run_test(base, &doc, text_of(yaml_document_get_node(&doc, p->key)),
					 yaml_document_get_node(&doc, p->value), &r, &c);
			if (r.mode == MODE_EMBEDDED) {
				ws_dns_free(r.dns);
				r.dns = NULL;
			}
		}
		spfz_free(z);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(in);
	ws_dns_free(r.dns);
	if (nsd_dir) {
		if (fclose(zones) != 0)
			status = 1;
		if (fclose(blackholes) != 0 || fclose(via) != 0)
			status = 1;
		printf("%s: wrote %u scenario zones for nsd to %s\n", base, scenarios, nsd_dir);
		return status;
	}
	if (emit_dir) {
		printf("%s: wrote %u scenario zone files to %s\n", base, scenarios, emit_dir);
		return status;
	}
	static const char *const mode_names[] = {"in-memory zone table", "nsd via ws_dns forward",
						 "ws_dns embedded zone"};
	printf("%s: %u scenarios, %u tests (%s): %u passed, %u accepted (not preferred), "
	       "%u failed; %u decided in memory\n",
	       base, scenarios, c.total, mode_names[r.mode], c.passed, c.accepted, c.failed,
	       c.in_memory);
	if (expect_mem >= 0 && c.in_memory != (unsigned long)expect_mem) {
		printf("%s: expected %ld tests decided in memory, found %u\n", base, expect_mem,
		       c.in_memory);
		status = 1;
	}
	printf("%s: score %u/%u\n", base, c.passed + c.accepted, c.total);
	if (expect >= 0 && c.total != (unsigned long)expect) {
		printf("%s: expected %ld tests, found %u\n", base, expect, c.total);
		status = 1;
	}
	return status || c.failed ? 1 : 0;
}

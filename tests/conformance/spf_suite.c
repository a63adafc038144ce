/*
 * Runs an openspf/pyspf SPF conformance file (a YAML stream, one scenario per
 * document) against auth/spf: each scenario's zonedata answers the
 * evaluator's queries (spf_zone.c), every test's result must be one of the
 * expected ones and, where given, the explanation must match (the default
 * explanation is configured to the literal "DEFAULT", as the suite expects).
 *
 *   spf_suite FILE [--expect N]      run; FILE relative to
 *                                    $WS_SHARED_DIR/conformance/spf/ unless it has a '/'
 *   spf_suite FILE --emit-zones DIR  write each scenario as DIR/<stem>-NN.zone
 *
 * Exit status: 0 when every test passed (and N tests ran, with --expect).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "spf.h"
#include "spf_zone.h"

#define MAX_QUERIES 1000 /* a runaway evaluator is a failure, not a hang */
#define FIXED_NOW 1700000000

struct counts {
	unsigned total, passed, accepted, failed;
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

/* Drives one evaluation against the zone. Returns NULL on an internal error. */
static struct spf_eval *
run_eval(const struct spfz_zone *z, const struct spf_params *p, unsigned *nq, char *err,
	 size_t errlen)
{
	struct spf_eval *ev = spf_eval_new_mailfrom(p);
	if (!ev) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct spf_query q;
	*nq = 0;
	while (spf_step(ev, &q) == SPF_STEP_NEED_DNS) {
		if (++*nq > MAX_QUERIES) {
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
		spf_answer(ev, &a);
		spfz_answer_free(&a);
	}
	return ev;
}

static void
run_test(const char *file, yaml_document_t *doc, const char *id, yaml_node_t *t,
	 const struct spfz_zone *z, struct counts *c)
{
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
	unsigned nq;
	char err[128];
	struct spf_eval *ev = run_eval(z, &p, &nq, err, sizeof(err));
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

static int
emit_zone(const char *dir, const char *stem, unsigned idx, const struct spfz_zone *z,
	  const char *desc)
{
	char path[4096];
	int w = snprintf(path, sizeof(path), "%s/%s-%02u.zone", dir, stem, idx);
	if (w < 0 || (size_t)w >= sizeof(path))
		return -1;
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "spf_suite: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "; %s\n", desc ? desc : "");
	int rc = spfz_emit(z, f);
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

int
main(int argc, char **argv)
{
	const char *file = NULL, *emit_dir = NULL;
	long expect = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
			expect = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--emit-zones") == 0 && i + 1 < argc)
			emit_dir = argv[++i];
		else if (!file)
			file = argv[i];
		else {
			fprintf(stderr, "usage: spf_suite FILE [--expect N] [--emit-zones DIR]\n");
			return 2;
		}
	}
	if (!file) {
		fprintf(stderr, "usage: spf_suite FILE [--expect N] [--emit-zones DIR]\n");
		return 2;
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
	if (emit_dir && mkdir(emit_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "spf_suite: %s: %s\n", emit_dir, strerror(errno));
		fclose(in);
		return 1;
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
		} else {
			for (yaml_node_pair_t *p = tests->data.mapping.pairs.start;
			     p < tests->data.mapping.pairs.top; p++)
				run_test(base, &doc, text_of(yaml_document_get_node(&doc, p->key)),
					 yaml_document_get_node(&doc, p->value), z, &c);
		}
		spfz_free(z);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(in);
	if (emit_dir) {
		printf("%s: wrote %u scenario zone files to %s\n", base, scenarios, emit_dir);
		return status;
	}
	printf("%s: %u scenarios, %u tests: %u passed, %u accepted (not preferred), %u failed\n",
	       base, scenarios, c.total, c.passed, c.accepted, c.failed);
	printf("%s: score %u/%u\n", base, c.passed + c.accepted, c.total);
	if (expect >= 0 && c.total != (unsigned long)expect) {
		printf("%s: expected %ld tests, found %u\n", base, expect, c.total);
		status = 1;
	}
	return status || c.failed ? 1 : 0;
}

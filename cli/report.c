#include "report.h"

#include <stdio.h>
#include <string.h>

#include "arc.h"
#include "authres.h"
#include "dkim.h"

static void
span_json(struct json *j, const char *key, const struct authres_span *s)
{
	char buf[AUTHRES_MAX_VALUE + 1];
	json_key(j, key);
	if (authres_span_copy(s, buf, sizeof(buf)) == (size_t)-1)
		json_null(j);
	else
		json_str(j, buf);
}

/* An AAR's payload, parsed: "aar_parsed": {"authserv_id", "results":
 * [{"method", "result", "reason", "props": {"ptype.property": value}}]},
 * or "aar_error" when it does not parse (reported, not a chain failure:
 * RFC 8617 leaves AAR content to the sealer, and Microsoft's do not
 * always parse). */
static void
aar_json(struct json *j, const char *text, size_t len)
{
	/* large, so not on the stack; one per thread: replay's workers
	 * render their lines at once when the control plane gives the policy
	 * (the lines wait outside the stdout lock) */
	static _Thread_local struct authres_parsed ar;
	const char *why;
	if (authres_parse(text, len, &ar, &why, NULL) != 0) {
		json_key(j, "aar_error");
		json_str(j, why);
		return;
	}
	json_key(j, "aar_parsed");
	json_obj(j);
	span_json(j, "authserv_id", &ar.authserv_id);
	json_key(j, "results");
	json_arr(j);
	for (size_t i = 0; i < ar.nmethods; i++) {
		const struct authres_method *m = &ar.methods[i];
		json_obj(j);
		span_json(j, "method", &m->method);
		span_json(j, "result", &m->result);
		if (m->reason.len)
			span_json(j, "reason", &m->reason);
		json_key(j, "props");
		json_obj(j);
		for (size_t k = 0; k < m->nprops; k++) {
			char key[160];
			snprintf(key, sizeof(key), "%.*s.%.*s", (int)m->props[k].ptype.len,
				 m->props[k].ptype.p, (int)m->props[k].property.len, m->props[k].property.p);
			span_json(j, key, &m->props[k].value);
		}
		json_obj_end(j);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void
dkim_authres(struct authres *ar, const struct dkim_verifier *v)
{
	size_t n = dkim_verifier_count(v);
	for (size_t i = 0; i < n; i++) {
		const struct dkim_sig_result *r = dkim_verifier_result(v, i);
		const struct dkim_sig *s = &r->sig;
		struct authres_prop props[] = {
			{"header", "d", s->d[0] ? s->d : NULL},
			{"header", "i", s->i_domain[0] ? s->i_domain : NULL},
			{"header", "s", s->s[0] ? s->s : NULL},
			{"header", "a", r->parsed ? dkim_algo_name(s->algo) : NULL},
			{"header", "b", s->b_prefix[0] ? s->b_prefix : NULL},
		};
		authres_add(ar, "dkim", dkim_result_name(r->result),
			    r->result == DKIM_PASS ? NULL : r->reason, props, 5);
	}
	if (n == 0)
		authres_add(ar, "dkim", "none", NULL, NULL, 0);
}

static void
arc_authres(struct authres *ar, const struct arc_chain *ch)
{
	char op[16];
	snprintf(op, sizeof(op), "%u", ch->oldest_pass);
	/* RFC 8617 7.2: header.oldest-pass, here whenever the chain passed */
	struct authres_prop aprops[] = {{"header", "oldest-pass", ch->oldest_pass ? op : NULL}};
	authres_add(ar, "arc", arc_result_name(ch->result), ch->result == ARC_FAIL ? ch->reason : NULL,
		    aprops, 1);
}

static void
dkim_json(struct json *j, const struct dkim_verifier *v)
{
	size_t n = dkim_verifier_count(v);
	json_key(j, "dkim");
	json_arr(j);
	for (size_t i = 0; i < n; i++) {
		const struct dkim_sig_result *r = dkim_verifier_result(v, i);
		json_obj(j);
		json_key(j, "d");
		json_str(j, r->sig.d);
		json_key(j, "s");
		json_str(j, r->sig.s);
		json_key(j, "a");
		json_str(j, r->parsed ? dkim_algo_name(r->sig.algo) : NULL);
		json_key(j, "result");
		json_str(j, dkim_result_name(r->result));
		json_key(j, "reason");
		json_str(j, r->reason);
		if (r->key_bits) {
			json_key(j, "key_bits");
			json_int(j, r->key_bits);
		}
		if (r->testing) {
			json_key(j, "testing");
			json_bool(j, true);
		}
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void
arc_json(struct json *j, const struct arc_chain *ch)
{
	json_key(j, "arc");
	json_obj(j);
	json_key(j, "result");
	json_str(j, arc_result_name(ch->result));
	json_key(j, "instances");
	json_int(j, ch->nsets);
	json_key(j, "oldest_pass");
	json_int(j, ch->oldest_pass);
	json_key(j, "reason");
	json_str(j, ch->reason);
	if (ch->fail_instance) {
		json_key(j, "fail_instance");
		json_int(j, ch->fail_instance);
	}
	json_key(j, "sets");
	json_arr(j);
	for (unsigned i = 0; i < ch->nsets; i++) {
		const struct arc_set_result *sr = &ch->sets[i];
		json_obj(j);
		json_key(j, "i");
		json_int(j, sr->instance);
		json_key(j, "d");
		json_str(j, sr->as.d);
		json_key(j, "s");
		json_str(j, sr->as.s);
		json_key(j, "cv");
		json_str(j, sr->as.cv == DKIM_CV_NONE ? "none" : sr->as.cv == DKIM_CV_PASS ? "pass"
											: "fail");
		json_key(j, "ams");
		json_str(j, dkim_result_name(sr->ams_result));
		json_key(j, "ams_reason");
		json_str(j, sr->ams_reason);
		json_key(j, "as");
		json_str(j, dkim_result_name(sr->as_result));
		json_key(j, "as_reason");
		json_str(j, sr->as_reason);
		json_key(j, "aar");
		json_strn(j, sr->aar, sr->aar_len);
		aar_json(j, sr->aar, sr->aar_len);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

void
report_message(FILE *out, const struct report_parts *p)
{
	struct authres ar;
	authres_init(&ar, p->authserv_id);
	dkim_authres(&ar, p->dkim);
	if (p->arc)
		arc_authres(&ar, p->arc);
	if (p->authres_more)
		p->authres_more(&ar, p->arg);
	const char *value = authres_value(&ar);
	if (!p->json) {
		fprintf(out, "Authentication-Results: %s\n", value ? value : "");
		authres_free(&ar);
		return;
	}
	struct json j;
	if (p->buffered)
		json_begin_buffered(&j, out);
	else
		json_begin(&j, out);
	if (p->file) {
		json_key(&j, "file");
		json_str(&j, p->file);
	}
	dkim_json(&j, p->dkim);
	if (p->arc)
		arc_json(&j, p->arc);
	if (p->json_more)
		p->json_more(&j, p->arg);
	json_key(&j, "authres");
	json_str(&j, value);
	if (p->json_tail)
		p->json_tail(&j, p->arg);
	json_end(&j);
	authres_free(&ar);
}

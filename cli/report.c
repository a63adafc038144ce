#include "report.h"

#include "authres.h"
#include "dkim.h"

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

void
report_message(FILE *out, const struct report_parts *p)
{
	struct authres ar;
	authres_init(&ar, p->authserv_id);
	dkim_authres(&ar, p->dkim);
	if (p->authres_more)
		p->authres_more(&ar, p->arg);
	const char *value = authres_value(&ar);
	if (!p->json) {
		fprintf(out, "Authentication-Results: %s\n", value ? value : "");
		authres_free(&ar);
		return;
	}
	struct json j;
	json_begin(&j, out);
	if (p->file) {
		json_key(&j, "file");
		json_str(&j, p->file);
	}
	dkim_json(&j, p->dkim);
	if (p->json_more)
		p->json_more(&j, p->arg);
	json_key(&j, "authres");
	json_str(&j, value);
	if (p->json_tail)
		p->json_tail(&j, p->arg);
	json_end(&j);
	authres_free(&ar);
}

/*
 * `wireseal replay [--zone FILE] [--json] [--workers N] [--no-verify] CAPTURE...`
 * and the live `wireseal-dp` (cmd_dp): both run the DPDK dataplane (dpe)
 * and print one line per message seen on the wire, the same object as
 * `wireseal verify --json` without "file" and with a "session" object.
 *
 * Keys come from an embedded zone (--zone: ws_dns embedded mode, one
 * resolver and key cache per worker) or, with --cp and no --zone, from the
 * control plane. replay by default asks synchronously (cpc_key; one key
 * cache per worker, TTLs ignored for the short run: a lookup blocks the
 * worker on the local daemon's UNIX socket, acceptable offline);
 * wireseal-dp, and replay with --async-keys, never wait: a message whose
 * key is not cached is parked and finished when the KEY_ANSWER comes
 * (dpkeys.h: TTLs, negative caching, bounds --max-parked, --park-timeout).
 * The dataplane opens no network connection. With both, the zone wins:
 * the run then does not depend on the daemon's DNS.
 *
 * SPF and DMARC are the control plane's by default (replay, monitor and
 * inline share one path): replay runs with a wireseal-cp (--cp SOCKET; else,
 * with --zone, a child it spawns with the zone as its embedded DNS, its
 * socket in a private temporary folder, killed with the replay; else one
 * listening at the default socket), asks a VERDICT for every message and
 * prints it; lines wait, in order, per worker, for their verdicts (the
 * worker goes on with the next messages meanwhile). --no-cp (or no control
 * plane to be had) runs the same policy in-process: each worker runs
 * cli/policy over its own ws_dns (a policy_cli copied from the options
 * --trusted-sealers, --dmarc-method, --random-pct), the session's client
 * address, HELO and MAIL FROM standing for verify's
 * --client-ip/--helo/--mail-from. Both print verify's object for the
 * message, byte for byte; with --no-verify there is no policy.
 *
 * --cp SOCKET: every message and session record also goes to wireseal-cp
 * (MESSAGE_RECORD, SESSION_RECORD; cpclient.h: kept until ACKed, re-sent
 * after a reconnect); at the end the run waits up to --cp-wait MS
 * (REPLAY_CP_ACK_MS) for the ACK of the last one, and fails without it.
 *
 * replay: one net_pcap port per capture (pcap or pcapng), EAL without
 * hugepages, PCI or root; the end of input is the ports staying idle for
 * --end-idle MS (net_pcap has no EOF), then every flow ends "capture-end".
 * --sig-batch N (1..DPE_SIG_BATCH_MAX, default DPE_SIG_BATCH; 1 = off): a
 * worker verifies the signatures of messages that end close together in one
 * batch of up to N (dpe.h); the lines and their order are the same for
 * every N. The summary's "sig-batch:" line shows the batches' fill.
 * --inline (one worker): the reading lcore runs the worker's stage itself
 * (one core in all, no ring hop; the per-core figures of bench/replay.sh).
 * Summary on stderr: wall rates, then CPU time per lcore and the rates per
 * worker core in CPU time (idle lcores sleep in replay mode), memory (peak
 * RSS, flow-table bytes, peak open flows), packets, flows, sessions.
 * 465 (implicit TLS): one {"event": "session", ...} line per connection.
 * wireseal-dp: EAL arguments after "--" (hugepages, -a PCI, --vdev ...),
 * runs until SIGINT/SIGTERM, telemetry command /wireseal/stats.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "cpclient.h"
#include "dns.h"
#include "dpe.h"
#include "dpkeys.h"
#include "authres.h"
#include "json.h"
#include "keys.h"
#include "policy.h"
#include "report.h"
#include "sessjson.h"
#include "tlscert.h"
#include "wiresig.h"

#define REPLAY_MAX_CAPTURES 16
#define REPLAY_END_IDLE_MS 300 /* net_pcap has no EOF: input is over after this much quiet */
#define REPLAY_FLOWS 65536u    /* per worker */
#define REPLAY_IDLE_S 300      /* flow idle timeout, capture time */
#define REPLAY_CP_ACK_MS 10000 /* wait for the control plane's last ACK (--cp-wait) */
#define REPLAY_VERDICT_MS 30000 /* a message's VERDICT must come by then, through
                                 * reconnects (--verdict-wait) */
#define REPLAY_MAX_PENDING 4096 /* lines per worker waiting for their verdicts; past it the
                                 * worker waits for the oldest (--max-pending, 1 up to it) */
#define REPLAY_SPAWN_WAIT_MS 10000 /* a spawned wireseal-cp must listen by then */
#define REPLAY_CPM_SOCKET "/run/wireseal/cpm.sock" /* the daemon's default (cpm_socket:) */

struct app;
struct pend;

struct app_worker {
	struct app *a;
	unsigned id;
	struct ws_dns *dns;
	struct keycache *kc;
	struct dpk *dpk; /* asynchronous keys (cp, no zone, live or --async-keys) */
	struct dpe_worker_stats *ws;
	/* SPF and DMARC over dns (only with a zone): the template's options,
	 * this worker's policy and dnscache; NULL without a zone */
	struct policy_cli *pol;
	struct policy_arc_store *arc_store;
	/* output lines in on_message order, waiting for their VERDICTs (policy
	 * from the control plane): printed from the head as they complete */
	struct pend *phead, **ptail;
	unsigned npend;
	uint64_t verdict_timeouts, verdict_errors;
	uint64_t pending_full; /* times the worker stopped for its oldest line (--max-pending) */
};

struct app {
	const char *prog;
	const char *zone;
	const char *authserv_id;
	const char *cp_path;
	struct cpc *cp; /* NULL without --cp */
	unsigned cp_wait_ms;
	unsigned verdict_wait_ms; /* --verdict-wait: per message */
	unsigned max_pending;     /* --max-pending: lines per worker waiting for VERDICTs */
	const char *spawn_sink; /* --spawn-cp SINK: run a wireseal-cp of our own */
	bool no_cp;             /* --no-cp: policy in-process, no control plane */
	bool cp_explicit;       /* --cp given (else cp_path may be the default socket) */
	bool spawn_default;     /* replay's default: a child wireseal-cp on --zone, no sink */
	bool cp_policy;         /* SPF/DMARC are the control plane's VERDICTs */
	bool cp_sessions;       /* SESSION_RECORDs to the control plane (not to a sinkless child) */
	pid_t cp_pid;
	char cp_dir[64], cp_sock[128];
	unsigned max_parked, park_timeout_ms;
	unsigned sig_batch; /* the batch size the run uses (1: off), for the summary */
	unsigned progress_ticks;
	bool live, async_keys;
	bool json, verify, tty;
	int64_t now;
	struct sessjson *sj;             /* session lines: policies, MX map, retry table */
	struct x509_store_st *ca_store;  /* --ca-file, NULL without */
	const char *ca_file;
	/* --trusted-sealers, --dmarc-method, --random-pct, as verify takes
	 * them; copied into each worker's policy_cli */
	struct policy_cli pol_opts;
	struct app_worker w[DPE_MAX_WORKERS];
};

static enum dkim_key_status
key_lookup(void *arg, const char *name, const struct dkim_key **key, const char **why)
{
	struct app_worker *w = arg;
	if (!w->kc) {
		*key = NULL;
		*why = "no key source (the dataplane reads keys from --zone or --cp)";
		return DKIM_KEY_TEMPFAIL;
	}
	return keycache_get(w->kc, name, key, why);
}

static bool
key_ready(void *arg, const char *name)
{
	struct app_worker *w = arg;
	return dpk_ready(w->dpk, name);
}

static enum dkim_key_status
async_lookup(void *arg, const char *name, const struct dkim_key **key, const char **why)
{
	struct app_worker *w = arg;
	return dpk_lookup(w->dpk, name, key, why);
}

static void on_message(void *arg, const struct dp_message_record *rec);
static int cp_setup(struct app *a, char *why, size_t whylen);
static void pend_drain(struct app_worker *w, bool wait, unsigned max_waiting);

static void
on_parked(void *arg, const struct dp_message_record *rec, struct msgstream_parked *p)
{
	struct app_worker *w = arg;
	dpk_park(w->dpk, rec, p, on_message, w);
}

static void
worker_poll(void *app, unsigned wi, bool final)
{
	struct app_worker *w = &((struct app *)app)->w[wi];
	if (w->dpk)
		dpk_poll(w->dpk, final, on_message, w);
	if (w->phead)
		pend_drain(w, final, w->a->max_pending);
}

static enum dkim_key_status
cp_fetch(void *arg, const char *name, struct dkim_key *key, char *why, size_t whylen)
{
	return cpc_key(arg, name, CPC_KEY_TIMEOUT_MS, key, why, whylen);
}

static void
session_json(struct json *j, void *arg)
{
	const struct dp_message_record *rec = arg;
	char ip[INET6_ADDRSTRLEN];
	json_key(j, "session");
	json_obj(j);
	json_key(j, "client_ip");
	cpc_ip_text(&rec->info->client, ip, sizeof(ip));
	json_str(j, ip);
	json_key(j, "client_port");
	json_int(j, rec->info->client.port);
	json_key(j, "server_ip");
	cpc_ip_text(&rec->info->server, ip, sizeof(ip));
	json_str(j, ip);
	json_key(j, "server_port");
	json_int(j, rec->info->server.port);
	json_key(j, "helo");
	json_str(j, rec->helo);
	json_key(j, "mail_from");
	json_str(j, rec->mail_from);
	json_key(j, "rcpt");
	json_arr(j);
	for (size_t i = 0; i < rec->nrcpt; i++)
		json_str(j, rec->rcpt[i]);
	json_arr_end(j);
	json_key(j, "starttls");
	json_bool(j, rec->starttls);
	json_key(j, "transaction");
	json_int(j, rec->transaction);
	if (rec->info->midstream) {
		json_key(j, "midstream");
		json_bool(j, true);
	}
	if (rec->gap_reason) {
		json_key(j, "gap");
		json_str(j, rec->gap_reason);
	}
	json_obj_end(j);
}

/* One message's parts for report_message: the record (session) and, when
 * policy ran, this worker's SPF/DMARC results. */
struct msg_out {
	const struct dp_message_record *rec;
	const struct policy_cli *pol; /* NULL: no spf/dmarc */
};

static void
msg_tail_json(struct json *j, void *arg)
{
	session_json(j, (void *)(uintptr_t)((const struct msg_out *)arg)->rec);
}

static void
msg_policy_json(struct json *j, void *arg)
{
	policy_cli_json(((const struct msg_out *)arg)->pol, j);
}

static void
msg_policy_authres(struct authres *ar, void *arg)
{
	policy_cli_authres(((const struct msg_out *)arg)->pol, ar);
}

/*
 * SPF and DMARC for one message, as `wireseal verify --client-ip IP --helo H
 * --mail-from M` computes them: the session's client address, HELO/EHLO
 * name ("" = not seen: no HELO check, as without --helo) and reverse-path
 * ("" = null sender). Bytes lost (a gap): DKIM could only say temperror, so
 * a DMARC that did not pass says temperror with the gap's reason rather
 * than a fail the lost bytes may have caused. false when policy could not
 * run (said on stderr; the message is printed without spf/dmarc).
 */
static bool
message_policy(struct app_worker *w, const struct dp_message_record *rec)
{
	struct policy_cli *pc = w->pol;
	char ip[INET6_ADDRSTRLEN], why[256];
	cpc_ip_text(&rec->info->client, ip, sizeof(ip));
	pc->spf_enabled = true;
	pc->spf_in.client_ip = ip;
	pc->spf_in.helo = rec->helo[0] ? rec->helo : NULL;
	pc->spf_in.mail_from = rec->mail_from;
	struct dmarc_arc_input arc;
	if (rec->arc)
		policy_arc_input_from_chain(rec->arc, w->arc_store, &arc);
	int rc = policy_cli_message(pc, rec->hdr, rec->dkim, rec->arc ? &arc : NULL, why,
	                            sizeof(why));
	/* ip is gone with this frame, the others with the record */
	pc->spf_in.client_ip = pc->spf_in.helo = pc->spf_in.mail_from = NULL;
	if (rc != 0) {
		fprintf(stderr, "%s: message %s:%u #%u: policy: %s\n", w->a->prog, ip,
		        rec->info->client.port, rec->transaction, why);
		return false;
	}
	struct dmarc_result *r = &pc->dm.res;
	if (rec->gap_reason && r->result != DMARC_RES_PASS) {
		r->result = DMARC_RES_TEMPERROR;
		r->disposition = DMARC_P_NONE;
		snprintf(r->reason, sizeof(r->reason), "%s: bytes of the message were not seen",
		         rec->gap_reason);
		memset(&pc->dm.ov, 0, sizeof(pc->dm.ov));
	}
	return true;
}

/* ---- lines waiting for the control plane's VERDICT ----
 *
 * A message's line is rendered when the message ends, without SPF and
 * DMARC: the JSON up to where they go (head), the A-R value so far (dkim=,
 * arc=) and the rest (tail, the session object). The VERDICT completes it:
 * head + "spf" + "dmarc" + "authres" (with spf= and dmarc= added) + tail,
 * the bytes the in-process path prints. Lines leave in the order their
 * messages ended, per worker. */
struct pend {
	struct pend *next;
	uint64_t rid;         /* the record's id; 0: the line is ready */
	uint64_t deadline_ms; /* monotonic: no verdict by then is a policy error */
	bool json;
	char *buf;            /* the rendered line (ready: the final one) */
	size_t len, at_policy, at_tail;
	struct authres ar;    /* dkim= and arc= (waiting lines) */
	char label[96];       /* "IP:port #n" for stderr */
};

static uint64_t
mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void
pend_free(struct pend *p)
{
	if (!p)
		return;
	free(p->buf);
	authres_free(&p->ar);
	free(p);
}

/* Lines go out as they are made when someone may be reading them now (a
 * terminal, a pipe, a socket: monitor use); into a regular file or
 * /dev/null they are written 64 KiB at a time: a write system call per
 * line cost ~10 % of a worker's time in the bench's replay (system calls
 * are dear on the VMs measured). Set once, before any line. */
static bool out_flush_each = true;
#define REPLAY_OUT_BUF (64u * 1024)

static void
out_setup(void)
{
	struct stat st;
	if (fstat(STDOUT_FILENO, &st) != 0)
		return;
	if (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && !isatty(STDOUT_FILENO))) {
		if (setvbuf(stdout, NULL, _IOFBF, REPLAY_OUT_BUF) == 0)
			out_flush_each = false;
	}
}

/* The end of one line: out now when it may be watched. */
static void
out_line_done(void)
{
	if (out_flush_each)
		fflush(stdout);
}

/* Writes buf to stdout as one line, whole (workers print concurrently). */
static void
print_line(const char *buf, size_t len)
{
	flockfile(stdout);
	fwrite(buf, 1, len, stdout);
	out_line_done();
	funlockfile(stdout);
}

/* Prints the ready lines at the head of w's queue. */
static void
pend_print(struct app_worker *w)
{
	while (w->phead && w->phead->rid == 0) {
		struct pend *p = w->phead;
		w->phead = p->next;
		if (!w->phead)
			w->ptail = &w->phead;
		w->npend--;
		print_line(p->buf, p->len);
		pend_free(p);
	}
}

/* A line that needs no verdict: printed now unless lines wait before it. */
static void
emit_line(struct app_worker *w, char *buf, size_t len)
{
	if (!w->phead) {
		print_line(buf, len);
		free(buf);
		return;
	}
	struct pend *p = calloc(1, sizeof(*p));
	if (!p) { /* out of memory: out of order rather than lost */
		print_line(buf, len);
		free(buf);
		return;
	}
	p->buf = buf;
	p->len = len;
	*w->ptail = p;
	w->ptail = &p->next;
	w->npend++;
}

/* Where a record's line is written: stdout itself (locked) when no line
 * waits for a verdict before it, else a memory stream queued in order. */
struct out_line {
	FILE *f;
	char *buf;
	size_t len;
	bool direct;
};

static FILE *
line_open(struct app_worker *w, struct out_line *l)
{
	*l = (struct out_line){.direct = !w->phead};
	l->f = l->direct ? stdout : open_memstream(&l->buf, &l->len);
	if (l->f && l->direct)
		flockfile(stdout);
	return l->f;
}

/* The line is written: out now, or queued behind the waiting ones (true;
 * an empty one too when keep_empty). */
static bool
line_close(struct app_worker *w, struct out_line *l, bool keep_empty)
{
	if (l->direct) {
		out_line_done();
		funlockfile(stdout);
		return false;
	}
	if (fclose(l->f) != 0 || (!keep_empty && l->len == 0)) {
		free(l->buf);
		return false;
	}
	emit_line(w, l->buf, l->len);
	return true;
}

/* Completes p with verdict v (NULL: none came; why says so). */
static void
pend_complete(struct app_worker *w, struct pend *p, const struct cpc_verdict *v, const char *why)
{
	if (!v || v->status != CPM_VERDICT_DONE) {
		fprintf(stderr, "%s: message %s: policy: %s\n", w->a->prog, p->label,
		        v ? v->why : why);
		if (v)
			w->verdict_errors++;
		v = NULL;
	}
	if (v) { /* spf= then dmarc=, as policy_cli_authres adds them */
		policy_spf_authres(&p->ar, &v->spf);
		if (v->dmarc_ran)
			policy_dmarc_authres(&p->ar, &v->dm);
	}
	const char *value = authres_value(&p->ar);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return; /* stays waiting; its deadline prints it without the verdict */
	if (!p->json) {
		fprintf(f, "Authentication-Results: %s\n", value ? value : "");
	} else {
		fwrite(p->buf, 1, p->at_policy, f);
		/* a writer inside the top-level object, after its first member */
		struct json j = {.f = f, .depth = 1};
		j.need_comma[1] = true;
		if (v) {
			policy_spf_json(&j, &v->spf);
			if (v->dmarc_ran)
				policy_dmarc_json(&j, &v->dm);
		}
		json_key(&j, "authres");
		json_str(&j, value);
		fwrite(p->buf + p->at_tail, 1, p->len - p->at_tail, f);
	}
	if (fclose(f) != 0) {
		free(out);
		return;
	}
	free(p->buf);
	authres_free(&p->ar);
	p->buf = out;
	p->len = len;
	p->rid = 0;
}

/* Takes w's verdicts from the mailbox and completes their lines; with
 * wait, until every line is printed (each waits until its deadline). */
static void
pend_drain(struct app_worker *w, bool wait, unsigned max_waiting)
{
	struct cpc *c = w->a->cp;
	bool full = false;
	for (;;) {
		struct cpc_verdict *v;
		while (c && (v = cpc_verdict_take(c, w->id))) {
			for (struct pend *p = w->phead; p; p = p->next)
				if (p->rid && p->rid == v->record_id) {
					pend_complete(w, p, v, NULL);
					break;
				}
			cpc_verdict_free(v); /* or a repeat for a re-sent record */
		}
		pend_print(w);
		if (!w->phead || (!wait && w->npend <= max_waiting))
			return;
		if (!wait && !full) { /* past the bound: the worker stops for its oldest */
			full = true;
			w->pending_full++;
		}
		uint64_t now = mono_ms();
		struct pend *h = w->phead;
		if (!c || now >= h->deadline_ms) {
			char why[96];
			snprintf(why, sizeof(why), "no verdict from the control plane within %u ms",
			         w->a->verdict_wait_ms);
			w->verdict_timeouts++;
			pend_complete(w, h, NULL, why);
			if (h->rid) { /* out of memory: print it unfinished rather than hang */
				h->rid = 0;
				h->len = 0;
			}
			continue;
		}
		uint64_t left = h->deadline_ms - now;
		cpc_verdict_wait(c, w->id, left < 200 ? (unsigned)left : 200);
	}
}

/* report_message's hooks while rendering a waiting line: where the policy
 * goes (before "authres"), the A-R so far, where the tail begins. */
struct pend_render {
	struct pend *p;
	const struct dp_message_record *rec;
};

static void
pr_authres(struct authres *ar, void *arg)
{
	struct pend *p = ((struct pend_render *)arg)->p;
	/* a copy: report_message frees its own */
	p->ar = *ar;
	p->ar.p = NULL;
	if (ar->p) {
		p->ar.p = malloc(ar->cap);
		if (p->ar.p)
			memcpy(p->ar.p, ar->p, ar->len + 1);
		else
			p->ar.oom = true;
	}
}

static void
pr_policy(struct json *j, void *arg)
{
	struct pend_render *r = arg;
	fflush(j->f);
	r->p->at_policy = (size_t)ftell(j->f);
}

static void
pr_tail(struct json *j, void *arg)
{
	struct pend_render *r = arg;
	fflush(j->f);
	r->p->at_tail = (size_t)ftell(j->f);
	session_json(j, (void *)(uintptr_t)r->rec);
}

/* The message's line, waiting for the VERDICT of record rid. */
static void
pend_message(struct app_worker *w, const struct dp_message_record *rec, uint64_t rid)
{
	struct pend *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	char ip[INET6_ADDRSTRLEN];
	cpc_ip_text(&rec->info->client, ip, sizeof(ip));
	snprintf(p->label, sizeof(p->label), "%s:%u #%u", ip, rec->info->client.port,
	         rec->transaction);
	p->rid = rid;
	p->json = w->a->json;
	p->deadline_ms = mono_ms() + w->a->verdict_wait_ms;
	FILE *f = open_memstream(&p->buf, &p->len);
	if (!f) {
		free(p);
		return;
	}
	struct pend_render pr = {.p = p, .rec = rec};
	struct report_parts parts = {
	        .authserv_id = w->a->authserv_id,
	        .json = w->a->json,
	        .dkim = rec->dkim,
	        .arc = rec->arc,
	        .authres_more = pr_authres,
	        .json_more = pr_policy,
	        .json_tail = pr_tail,
	        .arg = &pr,
	};
	report_message(f, &parts);
	if (fclose(f) != 0) {
		pend_free(p);
		return;
	}
	*w->ptail = p;
	w->ptail = &p->next;
	w->npend++;
}

static void
on_message(void *arg, const struct dp_message_record *rec)
{
	struct app_worker *w = arg;
	if (w->dpk)
		dpk_message_done(w->dpk);
	dpe_count_message(w->ws, rec);
	if (rec->gap_reason)
		w->ws->gaps++;
	if (w->a->cp_policy && rec->dkim && rec->hdr) {
		/* the control plane's policy: the line waits for its VERDICT */
		uint64_t rid;
		if (cpc_message_verdict(w->a->cp, rec, w->id, &rid) == 0) {
			pend_message(w, rec, rid);
			pend_drain(w, false, w->a->max_pending);
			return;
		}
		/* not queued (counted there, reported at the end): no policy */
	} else if (w->a->cp) {
		cpc_message(w->a->cp, rec); /* a failure is counted there, reported at the end */
	}
	/* policy before the lock: its DNS lookups (the zone) are this worker's */
	struct msg_out mo = {.rec = rec};
	if (w->pol && rec->dkim && rec->hdr && message_policy(w, rec))
		mo.pol = w->pol;
	/* straight to stdout, unless lines wait for verdicts before this one */
	struct out_line l;
	FILE *f = line_open(w, &l);
	if (!f)
		return;
	if (rec->dkim) {
		struct report_parts p = {
		        .authserv_id = w->a->authserv_id,
		        .json = w->a->json,
		        .dkim = rec->dkim,
		        .arc = rec->arc,
		        .authres_more = mo.pol ? msg_policy_authres : NULL,
		        .json_more = mo.pol ? msg_policy_json : NULL,
		        .json_tail = msg_tail_json,
		        .arg = &mo,
		};
		report_message(f, &p);
	} else if (w->a->json) {
		struct json j;
		json_begin(&j, f);
		session_json(&j, (void *)(uintptr_t)rec);
		json_end(&j);
	}
	if (line_close(w, &l, true))
		pend_drain(w, false, w->a->max_pending);
}

/* Implicit TLS (465) shows no SMTP: its session facts are the only record,
 * one line with "event": "session" (SMTP sessions are told by their
 * messages). */
static void
on_session(void *arg, const struct dp_session_record *rec)
{
	struct app_worker *w = arg;
	if (w->a->cp && w->a->cp_sessions)
		cpc_session(w->a->cp, rec); /* a failure is counted there, reported at the end */
	/* straight to stdout, unless lines wait for verdicts before this one
	 * (the session's messages) */
	struct out_line l;
	FILE *f = line_open(w, &l);
	if (!f)
		return;
	if (w->a->json) {
		sessjson_print(w->a->sj, f, rec);
	} else if (rec->info->implicit_tls) {
		/* implicit TLS (465) shows no SMTP: its facts are its only record */
		char cip[INET6_ADDRSTRLEN], sip[INET6_ADDRSTRLEN];
		cpc_ip_text(&rec->info->client, cip, sizeof(cip));
		cpc_ip_text(&rec->info->server, sip, sizeof(sip));
		fprintf(f, "session %s port %u -> %s port %u: implicit TLS, %llu bytes client, %llu "
		        "bytes server, ended %s\n",
		        cip, rec->info->client.port, sip, rec->info->server.port,
		        (unsigned long long)rec->tls_bytes[DP_DIR_C2S],
		        (unsigned long long)rec->tls_bytes[DP_DIR_S2C], rec->end_reason);
	}
	line_close(w, &l, false);
}

/* A worker's own DNS view of the embedded zone and its key cache. */
static int
worker_zone(struct app *a, struct app_worker *w)
{
	char why[256];
	struct ws_dns_config dc = {.zone_file = a->zone};
	w->dns = ws_dns_new(&dc, why, sizeof(why));
	if (!w->dns) {
		fprintf(stderr, "%s: %s: %s\n", a->prog, a->zone, why);
		return -1;
	}
	w->kc = keycache_new(w->dns);
	return w->kc ? 0 : -1;
}

static int
worker_setup(void *app, unsigned wi, struct dpe_worker_stats *ws, struct dp_session_config *out)
{
	struct app *a = app;
	struct app_worker *w = &a->w[wi];
	w->a = a;
	w->id = wi;
	w->ws = ws;
	w->ptail = &w->phead;
	/* the control plane is joined here, after the EAL's start-up, which
	 * the spawned child's own start-up overlaps */
	char cwhy[256];
	if (wi == 0 && cp_setup(a, cwhy, sizeof(cwhy)) != 0)
		return -1;
	if (a->zone && a->verify && a->cp_policy) {
		/* keys from the zone here, SPF/DMARC the control plane's */
		if (worker_zone(a, w) != 0)
			return -1;
	} else if (a->zone && a->verify) {
		char why[256];
		if (worker_zone(a, w) != 0)
			return -1;
		/* SPF/DMARC over the same zone, as verify does; a copy of the
		 * options (the trusted sealers stay in the template's buffer) */
		w->pol = malloc(sizeof(*w->pol));
		w->arc_store = policy_arc_store_new();
		if (!w->pol || !w->arc_store)
			return -1;
		*w->pol = a->pol_opts;
		w->pol->trusted_buf = NULL;
		w->pol->pol = NULL;
		if (policy_cli_start(w->pol, w->dns, a->now, why, sizeof(why)) != 0) {
			fprintf(stderr, "%s: %s\n", a->prog, why);
			return -1;
		}
		/* %{r} (RFC 7208 7.3): this host, as the control plane's policy
		 * has it (policy.authserv_id), so both paths print the same */
		w->pol->spf_in.receiver = a->authserv_id;
	} else if (a->cp && a->verify && a->async_keys) {
		w->dpk = dpk_new(a->cp, wi, a->max_parked, a->park_timeout_ms);
		if (!w->dpk)
			return -1;
	} else if (a->cp && a->verify) {
		w->kc = keycache_new_fetch(cp_fetch, a->cp);
		if (!w->kc)
			return -1;
	}
	*out = (struct dp_session_config){
	        .verify = a->verify,
	        .now = a->now,
	        .key_lookup = key_lookup,
	        .on_message = on_message,
	        .on_session = on_session,
	        .arg = w,
	        .ca_store = a->ca_store,
	};
	if (w->dpk) {
		out->key_lookup = async_lookup;
		out->key_ready = key_ready;
		out->on_parked = on_parked;
	}
	return 0;
}

static void
app_free(struct app *a)
{
	tlscert_store_free(a->ca_store);
	a->ca_store = NULL;
	for (unsigned i = 0; i < DPE_MAX_WORKERS; i++) {
		while (a->w[i].phead) {
			struct pend *p = a->w[i].phead;
			a->w[i].phead = p->next;
			pend_free(p);
		}
		a->w[i].ptail = &a->w[i].phead;
		a->w[i].npend = 0;
		dpk_free(a->w[i].dpk);
		a->w[i].dpk = NULL;
		keycache_free(a->w[i].kc);
		a->w[i].kc = NULL;
		if (a->w[i].pol) {
			policy_cli_end(a->w[i].pol); /* its policy; the shared PSL once all are done */
			free(a->w[i].pol);
			a->w[i].pol = NULL;
		}
		policy_arc_store_free(a->w[i].arc_store);
		a->w[i].arc_store = NULL;
		ws_dns_free(a->w[i].dns);
		a->w[i].dns = NULL;
	}
	policy_cli_end(&a->pol_opts);
}

/* The dataplane's counters to the control plane's metrics (STATS, shown as
 * wireseal_dataplane_stat{name=...}). Read from the main lcore while the
 * workers write them: each is one aligned 64-bit word, a snapshot. */
static void
relay_stats(struct app *a, const struct dpe_stats *st)
{
	struct dpk_stats k = {0};
	uint64_t pk = 0, msgs = 0, sess = 0, gaps = 0;
	for (unsigned p = 0; p < st->nports; p++)
		pk += st->port[p].packets;
	for (unsigned i = 0; i < st->nworkers; i++) {
		msgs += st->worker[i].messages;
		sess += st->worker[i].sessions;
		gaps += st->worker[i].gaps;
		if (!a->w[i].dpk)
			continue;
		const struct dpk_stats *ks = dpk_stats(a->w[i].dpk);
		k.requests += ks->requests, k.parked += ks->parked, k.parked_now += ks->parked_now;
		k.finished += ks->finished, k.parked_timeout += ks->parked_timeout;
		k.park_refused += ks->park_refused, k.hits += ks->hits, k.misses += ks->misses;
	}
	static const char *const names[] = {
	        "packets",        "messages",           "sessions",
	        "gaps",           "key_requests",       "key_cache_hits",
	        "key_cache_misses", "parked_total",     "parked_now",
	        "parked_finished", "parked_timeout_total", "park_refused_total",
	        "records_unsent", "cp_reconnects",
	};
	uint64_t v[] = {pk, msgs, sess, gaps, k.requests, k.hits, k.misses, k.parked, k.parked_now,
	                k.finished, k.parked_timeout, k.park_refused, cpc_unsent(a->cp),
	                cpc_reconnects(a->cp)};
	cpc_stats(a->cp, names, v, sizeof(v) / sizeof(v[0]));
}

static void
progress(void *app, const struct dpe_stats *st)
{
	struct app *a = app;
	if (a->cp && a->cp_sessions && ++a->progress_ticks % 4 == 0)
		relay_stats(a, st); /* about once a second */
	if (!a->tty)
		return;
	uint64_t pk = 0, msgs = 0;
	for (unsigned p = 0; p < st->nports; p++)
		pk += st->port[p].packets;
	for (unsigned w = 0; w < st->nworkers; w++)
		msgs += st->worker[w].messages;
	fprintf(stderr, "\r%s: %llu packets, %llu messages ", a->prog, (unsigned long long)pk,
	        (unsigned long long)msgs);
}

/* VmHWM of /proc/self/status (kB), -1 when unreadable. */
static long
peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long kb = -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static void
summary(const struct app *a, const struct dpe_stats *st)
{
	struct dpe_port_stats tp = {0};
	struct dpe_worker_stats tw = {0};
	for (unsigned p = 0; p < st->nports; p++) {
		tp.packets += st->port[p].packets;
		tp.bytes += st->port[p].bytes;
		tp.fragments += st->port[p].fragments;
		tp.reassembled += st->port[p].reassembled;
		tp.frag_unsupported += st->port[p].frag_unsupported;
		tp.frag_drops += st->port[p].frag_drops;
		tp.ring_full_drops += st->port[p].ring_full_drops;
		for (unsigned r = 0; r < PKT_REASON_COUNT; r++)
			tp.reasons[r] += st->port[p].reasons[r];
	}
	const struct dpe_worker_stats *w = st->worker;
	for (unsigned i = 0; i < st->nworkers; i++) {
#define ADD(f) tw.f += w[i].f
		ADD(packets), ADD(bytes), ADD(not_smtp), ADD(tls_flows), ADD(no_flow), ADD(flows);
		ADD(ended_fin), ADD(ended_rst), ADD(ended_idle), ADD(ended_evicted),
		        ADD(ended_capture);
		ADD(insert_failed), ADD(trimmed), ADD(messages), ADD(sessions), ADD(gaps);
		ADD(overlaps_differ), ADD(sig_batches), ADD(sig_jobs), ADD(lane_blocks), ADD(other_blocks);
		if (w[i].sig_batch_max > tw.sig_batch_max)
			tw.sig_batch_max = w[i].sig_batch_max;
		for (unsigned r = 0; r < DPE_NRESULTS; r++)
			ADD(results[r]);
#undef ADD
	}
	if (a->tty)
		fputc('\n', stderr);
	double s = st->wall_s > 0 ? st->wall_s : 1e-9;
	fprintf(stderr,
	        "%s: %u ports, %u workers: %llu packets, %llu bytes in %.3f s: %.0f packets/s, "
	        "%.3f Gbit/s, %.0f messages/s (run %.2f s with EAL start and end-of-input wait)\n",
	        a->prog, st->nports, st->nworkers, (unsigned long long)tp.packets,
	        (unsigned long long)tp.bytes, st->wall_s, (double)tp.packets / s,
	        (double)tp.bytes * 8 / s / 1e9, (double)tw.messages / s, st->total_s);
	/* per core in CPU time (idle lcores sleep in replay): what one worker
	 * core does, and the whole pipeline with the reading lcore */
	double wcpu = 0;
	for (unsigned i = 0; i < st->nworkers; i++)
		wcpu += w[i].cpu_s;
	double wc = wcpu > 0 ? wcpu : 1e-9, all = wcpu + st->main_cpu_s > 0 ? wcpu + st->main_cpu_s : 1e-9;
	fprintf(stderr,
	        "%s: cpu: main %.3f s, workers %.3f s: per worker core %.0f packets/s, %.3f Gbit/s, "
	        "%.0f messages/s; all lcores %.0f packets/s, %.3f Gbit/s, %.0f messages/s (%s)\n",
	        a->prog, st->main_cpu_s, wcpu, (double)tp.packets / wc, (double)tp.bytes * 8 / wc / 1e9,
	        (double)tw.messages / wc, (double)tp.packets / all, (double)tp.bytes * 8 / all / 1e9,
	        (double)tw.messages / all,
	        st->rss ? "rss" : st->inline_worker ? "inline worker" : "software spreading");
	/* memory: the flow tables (sized at start) and the process's peak
	 * resident set; bench/replay.sh turns them into bytes per session */
	uint64_t peak = 0;
	for (unsigned i = 0; i < st->nworkers; i++)
		peak += w[i].peak_flows;
	fprintf(stderr, "%s: memory: peak rss %ld kB, flow tables %llu bytes, peak open flows %llu\n",
	        a->prog, peak_rss_kb(), (unsigned long long)st->flow_table_bytes,
	        (unsigned long long)peak);
	fprintf(stderr, "%s: packets:", a->prog);
	for (unsigned r = 0; r < PKT_REASON_COUNT; r++)
		fprintf(stderr, " %s=%llu", pkt_reason_name((enum pkt_reason)r),
		        (unsigned long long)tp.reasons[r]);
	fprintf(stderr,
	        " fragments=%llu reassembled=%llu frag-unsupported=%llu frag-drops=%llu "
	        "ring-drops=%llu\n",
	        (unsigned long long)tp.fragments, (unsigned long long)tp.reassembled,
	        (unsigned long long)tp.frag_unsupported, (unsigned long long)tp.frag_drops,
	        (unsigned long long)tp.ring_full_drops);
	fprintf(stderr,
	        "%s: flows=%llu (fin %llu, rst %llu, idle %llu, evicted %llu, capture-end %llu, "
	        "refused %llu) quiet-trimmed=%llu not-smtp=%llu tls=%llu\n",
	        a->prog, (unsigned long long)tw.flows, (unsigned long long)tw.ended_fin,
	        (unsigned long long)tw.ended_rst, (unsigned long long)tw.ended_idle,
	        (unsigned long long)tw.ended_evicted, (unsigned long long)tw.ended_capture,
	        (unsigned long long)tw.insert_failed, (unsigned long long)tw.trimmed,
	        (unsigned long long)tw.not_smtp, (unsigned long long)tw.tls_flows);
	fprintf(stderr, "%s: sessions=%llu messages=%llu gaps=%llu overlaps-differ=%llu dkim:",
	        a->prog, (unsigned long long)tw.sessions, (unsigned long long)tw.messages,
	        (unsigned long long)tw.gaps, (unsigned long long)tw.overlaps_differ);
	for (unsigned r = 0; r < DPE_NRESULTS - 1; r++)
		if (tw.results[r])
			fprintf(stderr, " %s=%llu", dkim_result_name((enum dkim_result)r),
			        (unsigned long long)tw.results[r]);
	fprintf(stderr, " unsigned=%llu\n", (unsigned long long)tw.results[DPE_NRESULTS - 1]);
	if (a->verify)
		fprintf(stderr, "%s: sig-batch: size %u, batches=%llu jobs=%llu (%.2f per batch, max %llu)\n",
		        a->prog, a->sig_batch, (unsigned long long)tw.sig_batches,
		        (unsigned long long)tw.sig_jobs,
		        tw.sig_batches ? (double)tw.sig_jobs / (double)tw.sig_batches : 0.0,
		        (unsigned long long)tw.sig_batch_max);
	if (a->verify && tw.lane_blocks + tw.other_blocks)
		fprintf(stderr, "%s: sha256 lanes: %llu body blocks in 16-lane passes, %llu otherwise (%.1f%%)\n",
		        a->prog, (unsigned long long)tw.lane_blocks, (unsigned long long)tw.other_blocks,
		        100.0 * (double)tw.lane_blocks / (double)(tw.lane_blocks + tw.other_blocks));
	struct dpk_stats k = {0};
	bool any = false;
	for (unsigned i = 0; i < st->nworkers; i++) {
		if (!a->w[i].dpk)
			continue;
		const struct dpk_stats *ks = dpk_stats(a->w[i].dpk);
		any = true;
		k.requests += ks->requests, k.answers += ks->answers, k.hits += ks->hits;
		k.misses += ks->misses, k.parked += ks->parked, k.finished += ks->finished;
		k.parked_timeout += ks->parked_timeout, k.park_refused += ks->park_refused;
		k.parked_max = ks->parked_max > k.parked_max ? ks->parked_max : k.parked_max;
	}
	if (any)
		fprintf(stderr,
		        "%s: keys: requests=%llu answers=%llu hits=%llu misses=%llu parked=%llu "
		        "parked-max=%llu finished=%llu parked-timeout=%llu park-refused=%llu\n",
		        a->prog, (unsigned long long)k.requests, (unsigned long long)k.answers,
		        (unsigned long long)k.hits, (unsigned long long)k.misses,
		        (unsigned long long)k.parked, (unsigned long long)k.parked_max,
		        (unsigned long long)k.finished, (unsigned long long)k.parked_timeout,
		        (unsigned long long)k.park_refused);
}

/* A whole decimal number in lo..hi for option --name, else a clear error. */
static int
opt_uint(const char *prog, const char *name, const char *text, unsigned long lo,
         unsigned long hi, const char *unit, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v < lo || v > hi) {
		fprintf(stderr, "%s: --%s: %lu to %lu%s, not \"%s\"\n", prog, name, lo, hi, unit, text);
		return -1;
	}
	*out = v;
	return 0;
}

static int
parse_ports(const char *s, uint16_t *out, unsigned *n)
{
	*n = 0;
	while (*s) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);
		if (end == s || v == 0 || v > 65535 || *n == DPE_MAX_SMTP_PORTS)
			return -1;
		out[(*n)++] = (uint16_t)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return 0;
}

struct run_opts {
	unsigned workers;
	uint32_t flows;
	unsigned idle_s, end_idle_ms;
	uint16_t smtp[DPE_MAX_SMTP_PORTS], tls[DPE_MAX_SMTP_PORTS];
	unsigned nsmtp, ntls;
	bool inline_worker;
	unsigned sig_batch; /* --sig-batch: jobs per signature batch, 1 = off; 0 = DPE_SIG_BATCH */
};

static const struct option common_opts[] = {
        {"zone", required_argument, NULL, 'z'},
        {"cp", required_argument, NULL, 'c'},
        {"cp-wait", required_argument, NULL, 'W'},
        {"verdict-wait", required_argument, NULL, 0x106},
        {"max-pending", required_argument, NULL, 0x107},
        {"async-keys", no_argument, NULL, 'A'},
        {"spawn-cp", required_argument, NULL, 'S'},
        {"no-cp", no_argument, NULL, 'N'},
        {"max-parked", required_argument, NULL, 'P'},
        {"park-timeout", required_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'j'},
        {"workers", required_argument, NULL, 'w'},
        {"no-verify", no_argument, NULL, 'V'},
        {"authserv-id", required_argument, NULL, 'a'},
        {"now", required_argument, NULL, 'n'},
        {"smtp-ports", required_argument, NULL, 'p'},
        {"tls-ports", required_argument, NULL, 't'},
        {"flows", required_argument, NULL, 'f'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"end-idle", required_argument, NULL, 'e'},
        {"inline", no_argument, NULL, 'I'},
        {"sig-batch", required_argument, NULL, 0x108},
        {"sts-policy", required_argument, NULL, 'Y'},
        {"mx-map", required_argument, NULL, 'M'},
        {"ca-file", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        /* verify's policy options that a replay can use (the session gives
         * --client-ip, --helo and --mail-from) */
        {"trusted-sealers", required_argument, NULL, 0x103},
        {"dmarc-method", required_argument, NULL, 0x104},
        {"random-pct", required_argument, NULL, 0x105},
        {NULL, 0, NULL, 0},
};

/* Options shared by replay and wireseal-dp; returns -1 (usage), 1 (help), 0. */
static int
parse_common(int argc, char **argv, struct app *a, struct run_opts *o)
{
	int opt;
	unsigned long num;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", common_opts, NULL)) != -1) {
		switch (opt) {
		case 'z':
			a->zone = optarg;
			break;
		case 'c':
			a->cp_path = optarg;
			a->cp_explicit = true;
			break;
		case 'N':
			a->no_cp = true;
			break;
		case 'W':
			if (opt_uint(a->prog, "cp-wait", optarg, 0, UINT_MAX, "", &num) != 0)
				return -1;
			a->cp_wait_ms = (unsigned)num;
			break;
		case 0x106:
			if (opt_uint(a->prog, "verdict-wait", optarg, 0, UINT_MAX, "", &num) != 0)
				return -1;
			a->verdict_wait_ms = (unsigned)num;
			break;
		case 0x107:
			if (opt_uint(a->prog, "max-pending", optarg, 1, REPLAY_MAX_PENDING, " lines", &num) != 0)
				return -1;
			a->max_pending = (unsigned)num;
			break;
		case 'A':
			a->async_keys = true;
			break;
		case 'S':
			a->spawn_sink = optarg;
			break;
		case 'P':
			if (opt_uint(a->prog, "max-parked", optarg, 0, UINT_MAX, "", &num) != 0)
				return -1;
			a->max_parked = (unsigned)num;
			break;
		case 'T':
			if (opt_uint(a->prog, "park-timeout", optarg, 0, UINT_MAX, "", &num) != 0)
				return -1;
			a->park_timeout_ms = (unsigned)num;
			break;
		case 'j':
			a->json = true;
			break;
		case 'w':
			if (opt_uint(a->prog, "workers", optarg, 0, UINT_MAX, "", &num) != 0)
				return -1;
			o->workers = (unsigned)num;
			break;
		case 'V':
			a->verify = false;
			break;
		case 'a':
			a->authserv_id = optarg;
			break;
		case 'n':
			{
			char *end;
			errno = 0;
			a->now = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end) {
				fprintf(stderr, "%s: --now: seconds since the epoch, not \"%s\"\n", a->prog, optarg);
				return -1;
			}
		}
			break;
		case 'p':
			if (parse_ports(optarg, o->smtp, &o->nsmtp) != 0)
				return -1;
			break;
		case 't':
			if (parse_ports(optarg, o->tls, &o->ntls) != 0)
				return -1;
			break;
		case 'f':
			if (opt_uint(a->prog, "flows", optarg, 0, UINT32_MAX, "", &num) != 0)
				return -1;
			o->flows = (uint32_t)num;
			break;
		case 'i':
			if (opt_uint(a->prog, "idle-timeout", optarg, 0, UINT_MAX, "", &num) != 0)
				return -1;
			o->idle_s = (unsigned)num;
			break;
		case 'e':
			if (opt_uint(a->prog, "end-idle", optarg, 0, UINT_MAX, "", &num) != 0)
				return -1;
			o->end_idle_ms = (unsigned)num;
			break;
		case 'I':
			o->inline_worker = true;
			break;
		case 0x108:
			if (opt_uint(a->prog, "sig-batch", optarg, 1, DPE_SIG_BATCH_MAX, " signatures",
			             &num) != 0)
				return -1;
			o->sig_batch = (unsigned)num;
			break;
		case 'Y':
		case 'M': {
			char why[300];
			int rc = opt == 'Y' ? sessjson_add_policy(a->sj, optarg, why, sizeof(why))
			                    : sessjson_add_mx(a->sj, optarg, why, sizeof(why));
			if (rc != 0) {
				fprintf(stderr, "%s: %s\n", a->prog, why);
				return -1;
			}
			break;
		}
		case 'C':
			a->ca_file = optarg;
			break;
		case 'h':
			return 1;
		case 0x103:
		case 0x104:
		case 0x105: {
			char why[160];
			if (policy_cli_option(&a->pol_opts, opt, optarg, why, sizeof(why)) != 0) {
				fprintf(stderr, "%s: %s\n", a->prog, why);
				return -1;
			}
			break;
		}
		default:
			return -1;
		}
	}
	return 0;
}

static void
defaults(struct app *a, struct run_opts *o, const char *prog)
{
	static char host[256];
	memset(a, 0, sizeof(*a));
	memset(o, 0, sizeof(*o));
	policy_cli_init(&a->pol_opts);
	a->prog = prog;
	a->verify = true;
	a->now = (int64_t)time(NULL);
	snprintf(host, sizeof(host), "localhost");
	gethostname(host, sizeof(host) - 1);
	a->authserv_id = host;
	a->tty = isatty(STDERR_FILENO);
	out_setup();
	a->cp_wait_ms = REPLAY_CP_ACK_MS;
	a->verdict_wait_ms = REPLAY_VERDICT_MS;
	a->max_pending = REPLAY_MAX_PENDING;
	static struct sessjson *sj;
	if (!sj)
		sj = sessjson_new(); /* lives for the process: workers print through it */
	a->sj = sj;
	o->workers = 1;
	o->flows = REPLAY_FLOWS;
	o->idle_s = REPLAY_IDLE_S;
	o->end_idle_ms = REPLAY_END_IDLE_MS;
	o->smtp[0] = 25;
	o->smtp[1] = 587;
	o->nsmtp = 2;
	o->tls[0] = 465;
	o->ntls = 1;
}

/* A path for the generated YAML: absolute, double-quoted, nothing to escape. */
static int
yaml_path(const char *in, char *out, size_t len)
{
	char abs[PATH_MAX];
	if (in[0] == '/')
		snprintf(abs, sizeof(abs), "%s", in);
	else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)))
			return -1;
		if ((size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, in) >= sizeof(abs))
			return -1;
	}
	if (strpbrk(abs, "\"\\\n\r"))
		return -1;
	return (size_t)snprintf(out, len, "\"%s\"", abs) < len ? 0 : -1;
}

/* wireseal-cp next to this binary (WIRESEAL_CP overrides). */
static int
cp_binary(char *out, size_t len)
{
	const char *env = getenv("WIRESEAL_CP");
	if (env && *env)
		return (size_t)snprintf(out, len, "%s", env) < len ? 0 : -1;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	return (size_t)snprintf(out, len, "%s/wireseal-cp", self) < len ? 0 : -1;
}

static void
spawn_cleanup(struct app *a)
{
	if (a->cp_pid > 0) {
		/* the default child has no sink: nothing of its needs a clean stop */
		kill(a->cp_pid, a->spawn_sink ? SIGTERM : SIGKILL);
		int st;
		while (waitpid(a->cp_pid, &st, 0) < 0 && errno == EINTR)
			;
		a->cp_pid = 0;
	}
	if (!a->cp_dir[0])
		return;
	static const char *const files[] = {"cp.yaml", "cpm.sock", "ctl.sock", "cp.log"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char f[128];
		snprintf(f, sizeof(f), "%s/%s", a->cp_dir, files[i]);
		unlink(f);
	}
	rmdir(a->cp_dir);
	a->cp_dir[0] = '\0';
}

/* The generated configuration's policy part: replay's policy options as
 * the control plane's directives, so both paths decide alike. -1 when a
 * sealer cannot be written as a plain quoted YAML string. */
static int
spawn_policy_yaml(const struct app *a, FILE *f)
{
	const struct policy_cli *po = &a->pol_opts;
	fprintf(f, "policy:\n  authserv_id: \"%s\"\n  org_domain: %s\n  fixed_pct: %u\n",
	        strpbrk(a->authserv_id, "\"\\") ? "" : a->authserv_id,
	        po->dmarc.method == DMARC_ORG_PSL ? "psl" : "treewalk",
	        po->pct_fixed ? po->dmarc.random_pct : 100u);
	if (po->dmarc.ntrusted)
		fprintf(f, "  trusted_arc_sealers:\n");
	for (size_t i = 0; i < po->dmarc.ntrusted; i++) {
		if (strpbrk(po->trusted[i], "\"\\\n\r"))
			return -1;
		fprintf(f, "    - \"%s\"\n", po->trusted[i]);
	}
	return 0;
}

/* A wireseal-cp child with a generated configuration (the replay's --zone
 * as its zone, else the system resolver; its sockets in a private
 * temporary folder; verdict events to --spawn-cp's SINK, none by default),
 * started here and waited for by spawn_wait, so that the replay's own
 * start-up runs meanwhile. The child dies with the replay (PDEATHSIG) and
 * is stopped and reaped at the end (spawn_cleanup). */
static int
spawn_start(struct app *a, char *why, size_t whylen)
{
	char bin[PATH_MAX], zone[PATH_MAX + 8] = "\"\"", sink[PATH_MAX + 8] = "\"\"", conf[128];
	const char *opt = a->spawn_sink ? "--spawn-cp" : "control plane";
	if (cp_binary(bin, sizeof(bin)) != 0 || access(bin, X_OK) != 0) {
		snprintf(why, whylen, "%s: no wireseal-cp at %.180s (set WIRESEAL_CP)", opt, bin);
		return -1;
	}
	if ((a->spawn_sink && yaml_path(a->spawn_sink, sink, sizeof(sink)) != 0) ||
	    (a->zone && yaml_path(a->zone, zone, sizeof(zone)) != 0)) {
		snprintf(why, whylen, "%s: a path with a quote, backslash or newline", opt);
		return -1;
	}
	snprintf(a->cp_dir, sizeof(a->cp_dir), "/tmp/wireseal-cp-XXXXXX");
	if (!mkdtemp(a->cp_dir)) {
		snprintf(why, whylen, "%s: mkdtemp: %s", opt, strerror(errno));
		a->cp_dir[0] = '\0';
		return -1;
	}
	snprintf(a->cp_sock, sizeof(a->cp_sock), "%s/cpm.sock", a->cp_dir);
	snprintf(conf, sizeof(conf), "%s/cp.yaml", a->cp_dir);
	FILE *f = fopen(conf, "w");
	if (!f) {
		snprintf(why, whylen, "%s: %s: %s", opt, conf, strerror(errno));
		return -1;
	}
	/* MTA-STS judges SESSION_RECORDs for a sink; the default child has no
	 * sink and gets none, so it starts no worker threads */
	fprintf(f,
	        "# generated by wireseal replay\n"
	        "user: \"\"\ncpm_socket: \"%s\"\ncontrol_socket: \"%s/ctl.sock\"\n"
	        "dns:\n  zone_file: %s\nsinks:\n  json_file: %s\nmetrics:\n  port: 0\n"
	        "sts:\n  enabled: %s\n",
	        a->cp_sock, a->cp_dir, zone, sink, a->spawn_sink ? "true" : "false");
	int prc = spawn_policy_yaml(a, f);
	if (fclose(f) != 0 || prc != 0) {
		snprintf(why, whylen, "%s: writing %s%s", opt, conf,
		         prc ? ": a trusted sealer with a quote or backslash" : "");
		return -1;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "%s: fork: %s", opt, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* dies with the replay, even a replay killed -9; the check after
		 * it closes the window where the parent died before the prctl */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(127);
		char logp[128];
		snprintf(logp, sizeof(logp), "%s/cp.log", a->cp_dir);
		FILE *lf = freopen(logp, "w", stdout);
		if (lf)
			dup2(fileno(lf), STDERR_FILENO);
		execl(bin, "wireseal-cp", "-c", conf, (char *)NULL);
		_exit(127);
	}
	a->cp_pid = pid;
	return 0;
}

/* Connects to the child once it listens (its socket file appears at bind,
 * a moment before listen: a refused connect is retried). */
static struct cpc *
spawn_connect(struct app *a, char *why, size_t whylen)
{
	const char *opt = a->spawn_sink ? "--spawn-cp" : "control plane";
	for (unsigned ms = 0; ms < REPLAY_SPAWN_WAIT_MS; ms++) {
		struct stat sb;
		if (stat(a->cp_sock, &sb) == 0) {
			struct cpc *c = cpc_connect(a->cp_sock, true, why, whylen);
			if (c)
				return c;
		}
		int st;
		if (waitpid(a->cp_pid, &st, WNOHANG) == a->cp_pid) {
			a->cp_pid = 0;
			snprintf(why, whylen, "%s: wireseal-cp exited (status %d) before listening", opt,
			         WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			return NULL;
		}
		struct timespec t = {0, 1000000}; /* 1 ms: it listens in ~10 ms */
		nanosleep(&t, NULL);
	}
	snprintf(why, whylen, "%s: wireseal-cp did not listen within %u ms", opt,
	         REPLAY_SPAWN_WAIT_MS);
	return NULL;
}

/* Which control plane, if any, this run uses (replay; wireseal-dp only
 * ever uses --cp). Returns 0, or -1 after an error was said (exit 1). */
static int
cp_setup(struct app *a, char *why, size_t whylen)
{
	bool spawn = a->spawn_sink || a->spawn_default;
	if (spawn) {
		if (!(a->cp = spawn_connect(a, why, whylen)))
			goto no_spawn;
		a->cp_path = a->cp_sock;
	} else if (a->cp_path) {
		/* replay waits for room in the ACK queue; the live dataplane drops */
		a->cp = cpc_connect(a->cp_path, !a->live, why, whylen);
		if (!a->cp && !a->cp_explicit && !a->live)
			return 0; /* nothing at the default socket: in-process */
		if (!a->cp) {
			fprintf(stderr, "%s: %s\n", a->prog, why);
			return -1;
		}
	} else {
		return 0;
	}
	a->cp_policy = !a->live && a->verify;
	a->cp_sessions = !a->spawn_default;
	return 0;
no_spawn:
	if (!a->spawn_default) {
		fprintf(stderr, "%s: %s\n", a->prog, why);
		return -1;
	}
	/* the default child is a convenience: without it, the same policy runs here */
	fprintf(stderr, "%s: %s: SPF and DMARC run in-process\n", a->prog, why);
	spawn_cleanup(a);
	a->spawn_default = false;
	a->cp_path = NULL;
	return 0;
}

static int
run(struct app *a, const struct run_opts *o, int eal_argc, char **eal_argv,
    const char *const *expect, unsigned nexpect, bool replay, volatile bool *stop)
{
	a->sig_batch = o->sig_batch ? o->sig_batch : DPE_SIG_BATCH;
	struct dpe_config dc = {
	        .eal_argc = eal_argc,
	        .eal_argv = eal_argv,
	        .expect_ports = expect,
	        .nexpect_ports = nexpect,
	        .nworkers = o->workers,
	        .nsmtp_ports = o->nsmtp,
	        .ntls_ports = o->ntls,
	        .flows_per_worker = o->flows,
	        .inline_worker = o->inline_worker,
	        .sig_batch = o->sig_batch,
	        .idle_ns = (uint64_t)o->idle_s * 1000000000u,
	        .end_idle_ms = replay ? o->end_idle_ms : 0,
	        .stop = stop,
	        .telemetry = !replay,
	        .worker_setup = worker_setup,
	        .progress = progress,
	        .worker_poll = worker_poll,
	        .app = a,
	};
	memcpy(dc.smtp_ports, o->smtp, sizeof(dc.smtp_ports));
	memcpy(dc.tls_ports, o->tls, sizeof(dc.tls_ports));
	static struct dpe_stats st;
	char why[256];
	if ((a->spawn_sink || a->spawn_default) && spawn_start(a, why, sizeof(why)) != 0) {
		spawn_cleanup(a);
		if (a->spawn_sink) {
			fprintf(stderr, "%s: %s\n", a->prog, why);
			return 1;
		}
		fprintf(stderr, "%s: %s: SPF and DMARC run in-process\n", a->prog, why);
		a->spawn_default = false;
	}
	/* the child starts while this process loads its patterns and CAs */
	if (wiresig_init_db(why, sizeof(why)) != 0)
		fprintf(stderr, "%s: wire signal patterns off: %s\n", a->prog, why);
	if (a->ca_file) {
		a->ca_store = tlscert_store_load(a->ca_file, why, sizeof(why));
		if (!a->ca_store) {
			fprintf(stderr, "%s: %s\n", a->prog, why);
			spawn_cleanup(a);
			return 1;
		}
	}
	int rc = dpe_run(&dc, &st, why, sizeof(why));
	/* lines still waiting for verdicts (the inline worker has no poll at
	 * the end; every worker has stopped by now) */
	uint64_t vto = 0, verr = 0, vfull = 0;
	for (unsigned i = 0; i < DPE_MAX_WORKERS; i++) {
		if (a->w[i].phead)
			pend_drain(&a->w[i], true, 0);
		vto += a->w[i].verdict_timeouts;
		verr += a->w[i].verdict_errors;
		vfull += a->w[i].pending_full;
	}
	if (rc != 0) {
		app_free(a);
		fprintf(stderr, "%s: %s\n", a->prog, why);
		cpc_free(a->cp);
		spawn_cleanup(a);
		return 1;
	}
	summary(a, &st);
	if (a->cp && a->cp_sessions) /* not to a sinkless child: no one reads its metrics */
		relay_stats(a, &st); /* the final figures (sent before the last ACK wait) */
	app_free(a);
	if (a->cp) {
		int crc = cpc_finish(a->cp, a->cp_wait_ms, why, sizeof(why));
		fprintf(stderr,
		        "%s: control plane %s: %llu records sent, %llu acknowledged, %llu not sent, "
		        "%llu truncated, %llu key requests, %llu re-sent, %llu reconnects\n",
		        a->prog, a->cp_path, (unsigned long long)cpc_sent(a->cp),
		        (unsigned long long)cpc_acked(a->cp), (unsigned long long)cpc_unsent(a->cp),
		        (unsigned long long)cpc_truncated(a->cp),
		        (unsigned long long)cpc_key_requests(a->cp),
		        (unsigned long long)cpc_resent(a->cp),
		        (unsigned long long)cpc_reconnects(a->cp));
		if (a->cp_policy)
			fprintf(stderr,
			        "%s: control plane policy: %llu verdicts, %llu refused, %llu not answered, "
			        "%llu waits at --max-pending %u\n",
			        a->prog, (unsigned long long)cpc_verdicts(a->cp),
			        (unsigned long long)verr, (unsigned long long)vto,
			        (unsigned long long)vfull, a->max_pending);
		if (crc != 0) {
			fprintf(stderr, "%s: control plane: %s\n", a->prog, why);
			rc = 1;
		}
		if (vto != 0)
			rc = 1; /* lines printed without the control plane's policy */
		cpc_free(a->cp);
		a->cp = NULL;
	}
	spawn_cleanup(a);
	return rc != 0 ? 1 : 0;
}

static void
replay_usage(void)
{
	fprintf(stderr, "usage: wireseal replay [--zone FILE] [--cp SOCKET | --spawn-cp SINK | --no-cp] [--cp-wait MS] [--verdict-wait MS] [--max-pending N] [--async-keys [--max-parked N] [--park-timeout MS]] [--json] [--workers N] [--no-verify] "
	                "[--authserv-id ID] [--now EPOCH] [--smtp-ports 25,587] [--tls-ports 465] "
	                "[--flows N] [--idle-timeout S] [--end-idle MS] [--inline] [--sig-batch N] "
	                "[--trusted-sealers D1,D2] [--dmarc-method psl|treewalk] [--random-pct 0..99] "
	                "[--sts-policy DOMAIN=FILE]... [--mx-map IP=HOST]... [--ca-file PEM] CAPTURE...\n");
}

static int
replay_main(int argc, char **argv, struct app *app, struct run_opts *opts)
{
	int pc = parse_common(argc, argv, app, opts);
	if (pc != 0) {
		replay_usage();
		return pc > 0 ? 0 : 2;
	}
	int ncap = argc - optind;
	if (ncap < 1 || ncap > REPLAY_MAX_CAPTURES || opts->workers < 1 ||
	    opts->workers > DPE_MAX_WORKERS ||
	    (app->no_cp && (app->cp_path || app->spawn_sink)) || (app->cp_path && app->spawn_sink)) {
		replay_usage();
		return 2;
	}
	/* The default: SPF and DMARC from a control plane. With a zone, a child
	 * of our own serving that zone (a daemon elsewhere would answer from
	 * other DNS); without one, the daemon at the default socket if one
	 * listens, else in-process (keys: none). Nothing to decide without
	 * verification. */
	if (!app->no_cp && !app->cp_path && !app->spawn_sink && app->verify) {
		if (app->zone)
			app->spawn_default = true;
		else
			app->cp_path = REPLAY_CPM_SOCKET;
	}
	/* net_pcap fails silently on an unreadable file (the port just does
	 * not appear) and its kvargs cannot carry a comma: check both here */
	for (int i = optind; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			fprintf(stderr, "wireseal replay: %s: cannot open\n", argv[i]);
			return 1;
		}
		fclose(f);
		if (strchr(argv[i], ',')) {
			fprintf(stderr, "wireseal replay: %s: a capture path cannot contain ','\n",
			        argv[i]);
			return 1;
		}
	}
	static char buf[REPLAY_MAX_CAPTURES + 16][4200];
	char *eal[REPLAY_MAX_CAPTURES + 16];
	const char *expect[REPLAY_MAX_CAPTURES];
	static char names[REPLAY_MAX_CAPTURES][32];
	int n = 0;
#define EAL_ARG(...) (snprintf(buf[n], sizeof(buf[n]), __VA_ARGS__), eal[n] = buf[n], n++)
	EAL_ARG("wireseal-replay");
	/* lcore 0 reads, 1..N verify; lcores beyond the CPUs share them */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	char lc[1024] = "";
	size_t off = 0;
	for (unsigned i = 0; i <= opts->workers; i++)
		off += (size_t)snprintf(lc + off, sizeof(lc) - off, "%s%u@%ld", i ? "," : "", i,
		                        (long)i % ncpu);
	EAL_ARG("--lcores=%s", lc);
	EAL_ARG("--no-huge");
	EAL_ARG("-m");
	EAL_ARG("%u", 256 + 64 * opts->workers);
	EAL_ARG("--no-pci");
	EAL_ARG("--no-shconf");
	EAL_ARG("--no-telemetry");
	EAL_ARG("--log-level=*:error");
	for (int i = 0; i < ncap; i++) {
		snprintf(names[i], sizeof(names[i]), "net_pcap%d", i);
		expect[i] = names[i];
		EAL_ARG("--vdev=%s,rx_pcap=%s", names[i], argv[optind + i]);
	}
#undef EAL_ARG
	return run(app, opts, n, eal, expect, (unsigned)ncap, true, NULL);
}

int
cmd_replay(int argc, char **argv)
{
	struct app a;
	struct run_opts o;
	defaults(&a, &o, "wireseal replay");
	int rc = replay_main(argc, argv, &a, &o);
	policy_cli_end(&a.pol_opts); /* every path: the option strings */
	return rc;
}

static volatile bool dp_stop;

static void
on_signal(int sig)
{
	(void)sig;
	dp_stop = true;
}

int
cmd_dp(int argc, char **argv)
{
	struct app a;
	struct run_opts o;
	defaults(&a, &o, "wireseal-dp");
	a.live = true;
	a.async_keys = true; /* a live worker never waits for a key */
	/* EAL arguments follow "--" */
	int split = argc;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			split = i;
			break;
		}
	int pc = parse_common(split, argv, &a, &o);
	if (pc != 0 || optind != split || split == argc) {
		fprintf(stderr,
		        "usage: wireseal-dp [--zone FILE] [--cp SOCKET [--cp-wait MS] [--max-parked N] [--park-timeout MS]] [--json] [--workers N] [--no-verify] "
		        "[--smtp-ports 25,587] [--tls-ports 465] [--flows N] [--idle-timeout S] [--inline] [--sig-batch N] "
		        "[--trusted-sealers D1,D2] [--dmarc-method psl|treewalk] [--random-pct 0..99] "
		        "[--sts-policy DOMAIN=FILE]... [--mx-map IP=HOST]... [--ca-file PEM] "
		        "-- EAL-ARGS (-l 0-N, hugepages or --no-huge, -a PCI or --vdev=...)\n");
		policy_cli_end(&a.pol_opts);
		return pc > 0 ? 0 : 2;
	}
	static char argv0[] = "wireseal-dp";
	char *eal[DPE_MAX_EAL_ARGS];
	int n = 0;
	if (argc - split >= DPE_MAX_EAL_ARGS) { /* argv0 + them: refused, never cut */
		fprintf(stderr, "wireseal-dp: more than %d EAL arguments\n", DPE_MAX_EAL_ARGS - 2);
		policy_cli_end(&a.pol_opts);
		return 2;
	}
	eal[n++] = argv0;
	for (int i = split + 1; i < argc; i++)
		eal[n++] = argv[i];
	/* a vdev the EAL could not make (a wrong interface, past
	 * RTE_MAX_ETHPORTS) fails silently: each --vdev must come up */
	static char vnames[DPE_MAX_EAL_ARGS][64];
	const char *expect[DPE_MAX_EAL_ARGS];
	unsigned nexp = 0;
	for (int i = 1; i < n; i++) {
		const char *v = strncmp(eal[i], "--vdev=", 7) == 0 ? eal[i] + 7
		                : strcmp(eal[i], "--vdev") == 0 && i + 1 < n ? eal[i + 1]
		                                                           : NULL;
		if (!v)
			continue;
		snprintf(vnames[nexp], sizeof(vnames[nexp]), "%.*s", (int)strcspn(v, ","), v);
		expect[nexp] = vnames[nexp];
		nexp++;
	}
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = run(&a, &o, n, eal, expect, nexp, false, &dp_stop);
	policy_cli_end(&a.pol_opts);
	return rc;
}

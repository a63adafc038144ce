/*
 * `wireseal replay [--zone FILE] [--json] [--workers N] [--no-verify] CAPTURE...`
 * and the live `wireseal-dp` (cmd_dp): both run the DPDK dataplane (dpe)
 * and print one line per message seen on the wire, the same object as
 * `wireseal verify --json` without "file" and with a "session" object.
 *
 * Keys come from an embedded zone (--zone: ws_dns embedded mode, one
 * resolver and key cache per worker) or, with --cp and no --zone, from the
 * control plane (KEY_REQUEST/KEY_ANSWER, cpc_key; one key cache per worker,
 * TTLs ignored for the short run). The dataplane opens no network connection:
 * a key lookup blocks the worker on the local control plane's UNIX socket,
 * acceptable offline (cpclient.h). With both, the zone wins: the run then
 * does not depend on the daemon's DNS.
 *
 * --cp SOCKET: every message record also goes to wireseal-cp as a cpm
 * MESSAGE_RECORD (cpclient.h); at the end the run waits up to
 * REPLAY_CP_ACK_MS for the ACK of the last one, and fails without it.
 *
 * replay: one net_pcap port per capture (pcap or pcapng), EAL without
 * hugepages, PCI or root; the end of input is the ports staying idle for
 * --end-idle MS (net_pcap has no EOF), then every flow ends "capture-end".
 * wireseal-dp: EAL arguments after "--" (hugepages, -a PCI, --vdev ...),
 * runs until SIGINT/SIGTERM, telemetry command /wireseal/stats.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "cpclient.h"
#include "dns.h"
#include "dpe.h"
#include "json.h"
#include "keys.h"
#include "report.h"
#include "sessjson.h"
#include "tlscert.h"
#include "wiresig.h"

#define REPLAY_MAX_CAPTURES 16
#define REPLAY_END_IDLE_MS 300 /* net_pcap has no EOF: input is over after this much quiet */
#define REPLAY_FLOWS 65536u    /* per worker */
#define REPLAY_IDLE_S 300      /* flow idle timeout, capture time */
#define REPLAY_CP_ACK_MS 10000 /* wait for the control plane's last ACK */

struct app;

struct app_worker {
	struct app *a;
	unsigned id;
	struct ws_dns *dns;
	struct keycache *kc;
	struct dpe_worker_stats *ws;
};

struct app {
	const char *prog;
	const char *zone;
	const char *authserv_id;
	const char *cp_path;
	struct cpc *cp; /* NULL without --cp */
	bool json, verify, tty;
	int64_t now;
	struct sessjson *sj;             /* session lines: policies, MX map, retry table */
	struct x509_store_st *ca_store;  /* --ca-file, NULL without */
	const char *ca_file;
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

static void
on_message(void *arg, const struct dp_message_record *rec)
{
	struct app_worker *w = arg;
	dpe_count_message(w->ws, rec);
	if (rec->gap_reason)
		w->ws->gaps++;
	if (w->a->cp)
		cpc_message(w->a->cp, rec); /* a failure is counted there, reported at the end */
	flockfile(stdout);
	if (rec->dkim) {
		struct report_parts p = {
		        .authserv_id = w->a->authserv_id,
		        .json = w->a->json,
		        .dkim = rec->dkim,
		        .arc = rec->arc,
		        .json_tail = session_json,
		        .arg = (void *)(uintptr_t)rec,
		};
		report_message(stdout, &p);
	} else if (w->a->json) {
		struct json j;
		json_begin(&j, stdout);
		session_json(&j, (void *)(uintptr_t)rec);
		json_end(&j);
	}
	fflush(stdout);
	funlockfile(stdout);
}

static void
on_session(void *arg, const struct dp_session_record *rec)
{
	struct app_worker *w = arg;
	if (!w->a->json)
		return;
	flockfile(stdout);
	sessjson_print(w->a->sj, stdout, rec);
	fflush(stdout);
	funlockfile(stdout);
}

static int
worker_setup(void *app, unsigned wi, struct dpe_worker_stats *ws, struct dp_session_config *out)
{
	struct app *a = app;
	struct app_worker *w = &a->w[wi];
	w->a = a;
	w->id = wi;
	w->ws = ws;
	if (a->zone && a->verify) {
		char why[256];
		struct ws_dns_config dc = {.zone_file = a->zone};
		w->dns = ws_dns_new(&dc, why, sizeof(why));
		if (!w->dns) {
			fprintf(stderr, "%s: %s: %s\n", a->prog, a->zone, why);
			return -1;
		}
		w->kc = keycache_new(w->dns);
		if (!w->kc)
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
	return 0;
}

static void
app_free(struct app *a)
{
	tlscert_store_free(a->ca_store);
	a->ca_store = NULL;
	for (unsigned i = 0; i < DPE_MAX_WORKERS; i++) {
		keycache_free(a->w[i].kc);
		ws_dns_free(a->w[i].dns);
	}
}

static void
progress(void *app, const struct dpe_stats *st)
{
	struct app *a = app;
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
	fprintf(stderr, "%s: packets:", a->prog);
	for (unsigned r = 0; r < PKT_REASON_COUNT; r++)
		fprintf(stderr, " %s=%llu", pkt_reason_name((enum pkt_reason)r),
		        (unsigned long long)tp.reasons[r]);
	fprintf(stderr, " fragments=%llu reassembled=%llu frag-unsupported=%llu ring-drops=%llu\n",
	        (unsigned long long)tp.fragments, (unsigned long long)tp.reassembled,
	        (unsigned long long)tp.frag_unsupported, (unsigned long long)tp.ring_full_drops);
	fprintf(stderr,
	        "%s: flows=%llu (fin %llu, rst %llu, idle %llu, evicted %llu, capture-end %llu, "
	        "refused %llu) quiet-trimmed=%llu not-smtp=%llu tls=%llu\n",
	        a->prog, (unsigned long long)tw.flows, (unsigned long long)tw.ended_fin,
	        (unsigned long long)tw.ended_rst, (unsigned long long)tw.ended_idle,
	        (unsigned long long)tw.ended_evicted, (unsigned long long)tw.ended_capture,
	        (unsigned long long)tw.insert_failed, (unsigned long long)tw.trimmed,
	        (unsigned long long)tw.not_smtp, (unsigned long long)tw.tls_flows);
	fprintf(stderr, "%s: sessions=%llu messages=%llu gaps=%llu dkim:", a->prog,
	        (unsigned long long)tw.sessions, (unsigned long long)tw.messages,
	        (unsigned long long)tw.gaps);
	for (unsigned r = 0; r < DPE_NRESULTS - 1; r++)
		if (tw.results[r])
			fprintf(stderr, " %s=%llu", dkim_result_name((enum dkim_result)r),
			        (unsigned long long)tw.results[r]);
	fprintf(stderr, " unsigned=%llu\n", (unsigned long long)tw.results[DPE_NRESULTS - 1]);
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
};

static const struct option common_opts[] = {
        {"zone", required_argument, NULL, 'z'},
        {"cp", required_argument, NULL, 'c'},
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
        {"sts-policy", required_argument, NULL, 'P'},
        {"mx-map", required_argument, NULL, 'M'},
        {"ca-file", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

/* Options shared by replay and wireseal-dp; returns -1 (usage), 1 (help), 0. */
static int
parse_common(int argc, char **argv, struct app *a, struct run_opts *o)
{
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", common_opts, NULL)) != -1) {
		switch (opt) {
		case 'z':
			a->zone = optarg;
			break;
		case 'c':
			a->cp_path = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 'w':
			o->workers = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'V':
			a->verify = false;
			break;
		case 'a':
			a->authserv_id = optarg;
			break;
		case 'n':
			a->now = strtoll(optarg, NULL, 10);
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
			o->flows = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			o->idle_s = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'e':
			o->end_idle_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'P':
		case 'M': {
			char why[300];
			int rc = opt == 'P' ? sessjson_add_policy(a->sj, optarg, why, sizeof(why))
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
	a->prog = prog;
	a->verify = true;
	a->now = (int64_t)time(NULL);
	snprintf(host, sizeof(host), "localhost");
	gethostname(host, sizeof(host) - 1);
	a->authserv_id = host;
	a->tty = isatty(STDERR_FILENO);
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

static int
run(struct app *a, const struct run_opts *o, int eal_argc, char **eal_argv,
    const char *const *expect, unsigned nexpect, bool replay, volatile bool *stop)
{
	struct dpe_config dc = {
	        .eal_argc = eal_argc,
	        .eal_argv = eal_argv,
	        .expect_ports = expect,
	        .nexpect_ports = nexpect,
	        .nworkers = o->workers,
	        .nsmtp_ports = o->nsmtp,
	        .ntls_ports = o->ntls,
	        .flows_per_worker = o->flows,
	        .idle_ns = (uint64_t)o->idle_s * 1000000000u,
	        .end_idle_ms = replay ? o->end_idle_ms : 0,
	        .stop = stop,
	        .telemetry = !replay,
	        .worker_setup = worker_setup,
	        .progress = progress,
	        .app = a,
	};
	memcpy(dc.smtp_ports, o->smtp, sizeof(dc.smtp_ports));
	memcpy(dc.tls_ports, o->tls, sizeof(dc.tls_ports));
	static struct dpe_stats st;
	char why[256];
	if (wiresig_init_db(why, sizeof(why)) != 0)
		fprintf(stderr, "%s: wire signal patterns off: %s\n", a->prog, why);
	if (a->ca_file) {
		a->ca_store = tlscert_store_load(a->ca_file, why, sizeof(why));
		if (!a->ca_store) {
			fprintf(stderr, "%s: %s\n", a->prog, why);
			return 1;
		}
	}
	if (a->cp_path) {
		a->cp = cpc_connect(a->cp_path, why, sizeof(why));
		if (!a->cp) {
			fprintf(stderr, "%s: %s\n", a->prog, why);
			return 1;
		}
	}
	int rc = dpe_run(&dc, &st, why, sizeof(why));
	app_free(a);
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", a->prog, why);
		cpc_free(a->cp);
		return 1;
	}
	summary(a, &st);
	if (a->cp) {
		int crc = cpc_finish(a->cp, REPLAY_CP_ACK_MS, why, sizeof(why));
		fprintf(stderr,
		        "%s: control plane %s: %llu records sent, %llu acknowledged, %llu not sent, "
		        "%llu truncated, %llu key requests\n",
		        a->prog, a->cp_path, (unsigned long long)cpc_sent(a->cp),
		        (unsigned long long)cpc_acked(a->cp), (unsigned long long)cpc_unsent(a->cp),
		        (unsigned long long)cpc_truncated(a->cp),
		        (unsigned long long)cpc_key_requests(a->cp));
		if (crc != 0) {
			fprintf(stderr, "%s: control plane: %s\n", a->prog, why);
			rc = 1;
		}
		cpc_free(a->cp);
		a->cp = NULL;
	}
	return rc != 0 ? 1 : 0;
}

static void
replay_usage(void)
{
	fprintf(stderr, "usage: wireseal replay [--zone FILE] [--cp SOCKET] [--json] [--workers N] [--no-verify] "
	                "[--authserv-id ID] [--now EPOCH] [--smtp-ports 25,587] [--tls-ports 465] "
	                "[--flows N] [--idle-timeout S] [--end-idle MS] [--sts-policy DOMAIN=FILE]... "
	                "[--mx-map IP=HOST]... [--ca-file PEM] CAPTURE...\n");
}

int
cmd_replay(int argc, char **argv)
{
	struct app a;
	struct run_opts o;
	defaults(&a, &o, "wireseal replay");
	int pc = parse_common(argc, argv, &a, &o);
	if (pc != 0) {
		replay_usage();
		return pc > 0 ? 0 : 2;
	}
	int ncap = argc - optind;
	if (ncap < 1 || ncap > REPLAY_MAX_CAPTURES || o.workers < 1 ||
	    o.workers > DPE_MAX_WORKERS) {
		replay_usage();
		return 2;
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
	for (unsigned i = 0; i <= o.workers; i++)
		off += (size_t)snprintf(lc + off, sizeof(lc) - off, "%s%u@%ld", i ? "," : "", i,
		                        (long)i % ncpu);
	EAL_ARG("--lcores=%s", lc);
	EAL_ARG("--no-huge");
	EAL_ARG("-m");
	EAL_ARG("%u", 256 + 64 * o.workers);
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
	return run(&a, &o, n, eal, expect, (unsigned)ncap, true, NULL);
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
		        "usage: wireseal-dp [--zone FILE] [--cp SOCKET] [--json] [--workers N] [--no-verify] "
		        "[--smtp-ports 25,587] [--tls-ports 465] [--flows N] [--idle-timeout S] "
		        "-- EAL-ARGS (-l 0-N, hugepages or --no-huge, -a PCI or --vdev=...)\n");
		return pc > 0 ? 0 : 2;
	}
	static char argv0[] = "wireseal-dp";
	char *eal[64];
	int n = 0;
	eal[n++] = argv0;
	for (int i = split + 1; i < argc && n < 63; i++)
		eal[n++] = argv[i];
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return run(&a, &o, n, eal, NULL, 0, false, &dp_stop);
}

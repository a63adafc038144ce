/* wireseal: hot-path (tools/check-source.sh: no malloc/free or printf family here) */
#include "dpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_telemetry.h>
#include <rte_thash.h>

#include "flow.h"
#include "msgstream.h"
#include "sigbatch.h"

#define DPE_LIN_MAX (65535u + 64) /* largest IP datagram plus L2 */
#define DPE_EXPIRE_PER_BURST 64u  /* idle flows ended per worker loop turn at most */
/* Idle verifiers (and ARC validators) a worker keeps for its next sessions:
 * sessions end and begin at about the same rate, so a few cover the churn
 * (more only while more than this many sessions end at once). */
#define DPE_POOL_MAX 16u
/* Per-member stage of a worker's lane group: what one session's segments
 * bring in one burst (a 1,460-byte segment or two), staged and compressed at
 * the end of that burst, 16 sessions per vector pass. A stage that fills
 * (one session with most of a burst) runs the group early: correct, only
 * less batched. Small, so that the stages of the messages in flight stay in
 * the cache between the copy in and the run. */
#define DPE_LANE_STAGE (8u * 1024)
#define DPE_TICK_NS 100000000u /* expiry passes at most every 100 ms of capture time */
#define DPE_RX_DESC 1024u      /* rx descriptors per queue (one queue per port) */
#define DPE_RX_DESC_RSS 512u   /* per queue with one queue per worker */
#define DPE_RSS_HF (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP)
/* replay mode: an lcore with nothing to do after this many empty polls
 * sleeps DPE_NAP_US instead of spinning, so that its CPU time is its work
 * (the per-core rates of the summary) and it leaves the CPU to the others */
#define DPE_IDLE_POLLS 256u
#define DPE_NAP_US 50u
#define DPE_PREFETCH_MAX 2048u /* payload bytes of the next segment prefetched */

/* An lcore's CPU time while it works: the stretches between its naps (the
 * naps' own system calls, e.g. through the end-of-input wait, are not work).
 * The clock is read only when a nap begins or ends. */
struct cpu_meter {
	double active, since;
	bool on;
};

struct worker {
	unsigned id;
	struct rte_ring *ring;
	struct flow_table *ft;
	struct dp_session_config scfg;
	struct msgstream_pool *pool; /* the worker's, in scfg.pool; made here */
	struct ws_hash_lanes *lanes; /* the pool's verifiers' SHA-256 body hashes; NULL: OpenSSL */
	struct sigbatch *batch; /* messages' signatures verified together, in scfg.batch; NULL: off */
	struct dpe_worker_stats *st;
	const struct dpe_config *cfg;
	uint64_t now_ns;
	uint64_t busy_tsc; /* when the last burst was done */
	uint64_t busy_cycles; /* inline mode: TSC cycles in the worker's stage */
	unsigned idle_polls;
	struct cpu_meter meter;
	uint64_t tick_ns;  /* capture time of the last expiry pass */
	uint64_t cpu_ns;   /* capture time cpu_s was last published (telemetry) */
	/* RSS mode: this worker polls queue id of every port itself */
	struct rte_ip_frag_tbl *frag;
	struct rte_ip_frag_death_row dr;
	uint64_t first_rx_tsc, last_rx_tsc;
	struct dpe_port_stats pst[DPE_MAX_PORTS]; /* summed into the run's stats by the main lcore */
	uint8_t lin[DPE_LIN_MAX];
} __rte_cache_aligned;

_Static_assert(DPE_MAX_PORTS <= RTE_MAX_ETHPORTS, "a port past the EAL's cannot exist");
_Static_assert(DPE_SIG_BATCH_MAX == SIGBATCH_MAX && DPE_SIG_BATCH_WAIT <= SIGBATCH_MAX_WAIT,
               "the engine's batch limits are the batch's");

/* One engine per process (one EAL per process); the telemetry callback and
 * the workers reach it through this pointer while dpe_run runs. */
static struct engine {
	const struct dpe_config *cfg;
	struct dpe_stats *st;
	struct worker *w[DPE_MAX_WORKERS];
	uint16_t port_id[DPE_MAX_PORTS];
	uint32_t ts_mult[DPE_MAX_PORTS]; /* PMD timestamp unit to ns (net_pcap: us) */
	int ts_off;                      /* our capture-time dynfield (ns) */
	int pmd_ts_off;                  /* the PMD's rx timestamp, -1 if none */
	uint64_t pmd_ts_flag;
	volatile bool input_done;
	/* RSS mode (every port spreads flows over one queue per worker with the
	 * symmetric key): the redirection table read back from each port, to
	 * find the owner of a datagram rebuilt from fragments */
	bool rss;
	bool inline_worker; /* one worker, one queue: the main lcore is the worker */
	uint16_t reta_size[DPE_MAX_PORTS];
	uint16_t reta[DPE_MAX_PORTS][DPE_RETA_MAX];
	unsigned rx_stopped; /* workers that stopped polling their queues */
	struct cpu_meter main_meter;
	uint8_t lin[DPE_LIN_MAX]; /* main lcore's linearising buffer */
} * eng;

static uint64_t *
ts_field(struct rte_mbuf *m)
{
	return RTE_MBUF_DYNFIELD(m, eng->ts_off, uint64_t *);
}

static uint64_t
wall_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static bool
port_in(const uint16_t *set, unsigned n, uint16_t p)
{
	for (unsigned i = 0; i < n; i++)
		if (set[i] == p)
			return true;
	return false;
}

/* The frame of m as one span: in place when it is one segment. */
static const uint8_t *
frame_of(struct rte_mbuf *m, uint8_t *lin, size_t *len)
{
	*len = rte_pktmbuf_pkt_len(m);
	if (m->nb_segs == 1)
		return rte_pktmbuf_mtod(m, const uint8_t *);
	if (*len > DPE_LIN_MAX)
		*len = DPE_LIN_MAX;
	return rte_pktmbuf_read(m, 0, (uint32_t)*len, lin);
}

/* ---- workers ---- */

static void
on_flow_end(void *arg, struct flow_entry *e, const char *reason)
{
	struct worker *w = arg;
	struct dp_session *s = e->user;
	if (!s)
		return;
	if (strcmp(reason, "fin") == 0)
		w->st->ended_fin++;
	else if (strcmp(reason, "rst") == 0)
		w->st->ended_rst++;
	else if (strcmp(reason, "idle") == 0)
		w->st->ended_idle++;
	else if (strcmp(reason, "evicted") == 0)
		w->st->ended_evicted++;
	else
		w->st->ended_capture++;
	dp_session_end(s, reason);
	const struct dp_session_counters *c = dp_session_counters(s);
	if (c) {
		w->st->gaps += c->gaps;
		w->st->overlaps_differ += c->overlaps_differ;
	}
	dp_session_free(s);
	w->st->sessions++;
	e->user = NULL;
}

static void
on_flow_quiet(void *arg, struct flow_entry *e)
{
	struct worker *w = arg;
	if (!e->user)
		return;
	dp_session_trim(e->user);
	w->st->trimmed++;
}

static void
endpoint(struct dp_endpoint *ep, const uint8_t ip[16], uint16_t port)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	memcpy(ep->ip, ip, 16);
	ep->v6 = memcmp(ip, mapped, 12) != 0;
	ep->port = port;
}

/* A segment of a flow not in the table: start a session when this is an SMTP
 * connection and the segment can begin one (a SYN, or data on a connection
 * picked up mid-stream; a bare ACK/FIN/RST after the end starts nothing). */
static struct flow_entry *
new_flow(struct worker *w, const struct pkt_info *in, const struct flow_key *k, bool src_lo)
{
	const struct dpe_config *cfg = w->cfg;
	bool syn = in->flags & PKT_TCP_SYN, ack = in->flags & PKT_TCP_ACK;
	if (!syn && in->payload_len == 0) {
		w->st->no_flow++;
		return NULL;
	}
	bool src_client;
	if (syn)
		src_client = !ack;
	else if (port_in(cfg->smtp_ports, cfg->nsmtp_ports, in->dport) ||
	         port_in(cfg->tls_ports, cfg->ntls_ports, in->dport))
		src_client = true;
	else
		src_client = false;
	uint16_t server_port = src_client ? in->dport : in->sport;
	bool tls = port_in(cfg->tls_ports, cfg->ntls_ports, server_port);
	if (!tls && !port_in(cfg->smtp_ports, cfg->nsmtp_ports, server_port)) {
		w->st->not_smtp++;
		return NULL;
	}
	struct flow_entry *e = flow_insert(w->ft, k, w->now_ns);
	if (!e) {
		w->st->insert_failed++;
		return NULL;
	}
	struct dp_session_info info = {0};
	if (src_client) {
		endpoint(&info.client, in->src, in->sport);
		endpoint(&info.server, in->dst, in->dport);
	} else {
		endpoint(&info.client, in->dst, in->dport);
		endpoint(&info.server, in->src, in->sport);
	}
	info.flow_id = ((uint64_t)w->id << 56) | (w->st->flows + 1); /* never 0: 0 is "no flow" */
	info.midstream = !(syn && !ack);
	info.implicit_tls = tls;
	e->client_is_lo = src_client == src_lo;
	e->user = dp_session_new(&w->scfg, &info);
	if (!e->user) {
		flow_end(w->ft, e, "memcap");
		w->st->insert_failed++;
		return NULL;
	}
	w->st->flows++;
	w->st->peak_flows = flow_counters(w->ft)->peak; /* live, for telemetry */
	if (tls)
		w->st->tls_flows++;
	return e;
}

static void cpu_publish(struct worker *w);

/* Capture time moves on: flows idle or quiet by now are handled before the
 * packet that moved it (a replayed capture has no timer between packets). */
static void
advance(struct worker *w, uint64_t ts)
{
	if (ts <= w->now_ns)
		return;
	w->now_ns = ts;
	if (ts - w->tick_ns < DPE_TICK_NS)
		return;
	w->tick_ns = ts;
	flow_expire(w->ft, w->now_ns, DPE_EXPIRE_PER_BURST);
	flow_trim(w->ft, w->now_ns, DPE_EXPIRE_PER_BURST);
	cpu_publish(w);
}

/* One parsed segment of a flow: find or start its session, feed it, end the
 * flow on RST or on FIN from both sides. hint: the bulk lookup's answer. */

static void
handle(struct worker *w, const struct pkt_info *in, const struct flow_key *k, bool lo,
       struct flow_entry *hint, uint64_t ts)
{
	advance(w, ts);
	struct flow_entry *e = hint;
	if (!e || !e->live || memcmp(&e->key, k, sizeof(*k)) != 0)
		e = flow_lookup(w->ft, k); /* a miss, or the entry changed earlier in the burst */
	if (!e)
		e = new_flow(w, in, k, lo);
	if (!e)
		return;
	enum dp_dir dir = lo == e->client_is_lo ? DP_DIR_C2S : DP_DIR_S2C;
	flow_touch(w->ft, e, w->now_ns);
	dp_session_segment(e->user, dir, in->seq, in->ack, in->flags, in->payload, in->payload_len,
	                   ts);
	if (in->flags & PKT_TCP_RST) {
		flow_end(w->ft, e, "rst");
	} else if (in->flags & PKT_TCP_FIN) {
		e->fin_seen |= (uint8_t)(1u << dir);
		if (e->fin_seen == 3)
			flow_end(w->ft, e, "fin");
	}
}

struct pending {
	struct pkt_info in[DPE_BURST];
	struct flow_key key[DPE_BURST];
	const struct flow_key *kp[DPE_BURST];
	bool lo[DPE_BURST];
	struct rte_mbuf *m[DPE_BURST];
	unsigned n;
};

static inline void
prefetch_payload(const struct pkt_info *in)
{
	const uint8_t *d = in->payload;
	size_t n = in->payload_len < DPE_PREFETCH_MAX ? in->payload_len : DPE_PREFETCH_MAX;
	for (size_t off = 0; off < n; off += RTE_CACHE_LINE_SIZE)
		rte_prefetch0(d + off);
}

/* Segments parsed in place, in arrival order: one bulk lookup, then each. */
static void
flush(struct worker *w, struct pending *p)
{
	struct flow_entry *fe[DPE_BURST];
	if (!p->n)
		return;
	flow_lookup_bulk(w->ft, p->kp, p->n, fe);
	for (unsigned i = 0; i < p->n; i++) {
		/* the payload was written on another core (the reading lcore,
		 * or the NIC): ask for the next segment's lines while this one
		 * is parsed, the parser reads every byte */
		if (i + 1 < p->n)
			prefetch_payload(&p->in[i + 1]);
		handle(w, &p->in[i], &p->key[i], p->lo[i], fe[i], *ts_field(p->m[i]));
		rte_pktmbuf_free(p->m[i]);
	}
	p->n = 0;
}

/* The lane group's counters into the worker's (telemetry, summary). */
static void
lanes_publish(struct worker *w)
{
	if (!w->lanes)
		return;
	struct ws_hash_lanes_stats ls;
	ws_hash_lanes_stats(w->lanes, &ls);
	w->st->lane_blocks = ls.lane_blocks;
	w->st->other_blocks = ls.pair_blocks + ls.alone_blocks;
}

/* The signature batch's counters into the worker's (telemetry, summary). */
static void
batch_publish(struct worker *w)
{
	const struct sigbatch_stats *b = sigbatch_stats(w->batch);
	w->st->sig_batches = b->batches;
	w->st->sig_jobs = b->jobs;
	w->st->sig_batch_max = b->max_jobs;
	lanes_publish(w);
}

/* The worker has nothing more to do for now (idle, end of input): the
 * messages waiting in its batch are verified and emitted. */
static void
batch_flush(struct worker *w)
{
	if (w->batch && sigbatch_waiting(w->batch) > 0) {
		sigbatch_run(w->batch);
		batch_publish(w);
	}
	lanes_publish(w); /* the finals of messages ended at the capture's end */
}

static void
worker_burst(struct worker *w, struct rte_mbuf **m, unsigned n)
{
	struct pending p;
	p.n = 0;
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *mb = m[i];
		w->st->packets++;
		w->st->bytes += rte_pktmbuf_pkt_len(mb);
		uint64_t ts = *ts_field(mb);
		bool chained = mb->nb_segs > 1;
		if (chained)
			flush(w, &p); /* keep arrival order: what came before goes first */
		size_t len;
		const uint8_t *f = frame_of(mb, w->lin, &len);
		unsigned k = p.n;
		if (!f || pkt_parse(f, len, &p.in[k]) != PKT_TCP) {
			rte_pktmbuf_free(mb);
			continue;
		}
		p.lo[k] = flow_key_make(p.in[k].src, p.in[k].sport, p.in[k].dst, p.in[k].dport,
		                        &p.key[k]);
		p.kp[k] = &p.key[k];
		if (chained) {
			/* the payload points into w->lin: handle it now, alone */
			handle(w, &p.in[k], &p.key[k], p.lo[k], NULL, ts);
			rte_pktmbuf_free(mb);
			continue;
		}
		p.m[k] = mb;
		p.n++;
	}
	flush(w, &p);
	/* the body bytes this burst brought, across its sessions, 16 at a time
	 * (what does not fill the 16 lanes waits for the next burst's bytes) */
	if (w->lanes) {
		ws_hash_lanes_poll(w->lanes);
		lanes_publish(w);
	}
	flow_expire(w->ft, w->now_ns, DPE_EXPIRE_PER_BURST);
	flow_trim(w->ft, w->now_ns, DPE_EXPIRE_PER_BURST);
	if (w->batch) {
		/* bounded latency under steady load (no idle turn to flush) */
		sigbatch_burst(w->batch);
		batch_publish(w);
	}
}

static bool rss_rx(struct worker *w);

static double
thread_cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
meter_start(struct cpu_meter *m)
{
	m->active = 0;
	m->since = thread_cpu_s();
	m->on = true;
}

static double
meter_total(struct cpu_meter *m)
{
	if (m->on) {
		m->active += thread_cpu_s() - m->since;
		m->since = thread_cpu_s();
	}
	return m->active;
}

/* Telemetry reads cpu_s while the run goes on: a worker lcore publishes
 * its meter at most every DPE_TICK_NS of capture time (two clock reads;
 * inline mode: the main lcore publishes the worker's share instead). */
static void
cpu_publish(struct worker *w)
{
	if (eng->inline_worker || w->now_ns - w->cpu_ns < DPE_TICK_NS)
		return;
	w->cpu_ns = w->now_ns;
	w->st->cpu_s = meter_total(&w->meter);
}

/* Work came: a napping lcore is at work again. */
static void
awake(unsigned *idle_polls, struct cpu_meter *m)
{
	if (*idle_polls > DPE_IDLE_POLLS && !m->on) {
		m->since = thread_cpu_s();
		m->on = true;
	}
	*idle_polls = 0;
}

/* One empty poll: spin (live, or briefly), or sleep (replay, idle a while). */
static void
nap(unsigned *idle_polls, bool replay, struct cpu_meter *m)
{
	if (replay && ++*idle_polls > DPE_IDLE_POLLS) {
		if (m->on) {
			m->active += thread_cpu_s() - m->since;
			m->on = false;
		}
		rte_delay_us_sleep(DPE_NAP_US);
	} else {
		rte_pause();
	}
}

/* Software mode: segments come over the ring from the main lcore. RSS mode:
 * the worker polls its own queues, and the ring carries only rebuilt
 * datagrams from the other workers; at the end each worker stops polling,
 * and leaves once every worker has (nothing more can enter its ring). */
static int
worker_main(void *arg)
{
	struct worker *w = arg;
	struct rte_mbuf *m[DPE_BURST];
	meter_start(&w->meter);
	bool rx_on = eng->rss;
	unsigned want_stopped = eng->rss ? eng->cfg->nworkers : 0;
	for (;;) {
		bool any = false;
		if (rx_on && eng->input_done) {
			rx_on = false;
			__atomic_fetch_add(&eng->rx_stopped, 1, __ATOMIC_RELEASE);
		} else if (rx_on) {
			any = rss_rx(w);
		}
		unsigned n = rte_ring_dequeue_burst(w->ring, (void **)m, DPE_BURST, NULL);
		if (w->cfg->worker_poll)
			w->cfg->worker_poll(w->cfg->app, w->id, false);
		if (n) {
			awake(&w->idle_polls, &w->meter); /* before the work: it counts */
			worker_burst(w, m, n);
			any = true;
		}
		if (any) {
			w->busy_tsc = rte_rdtsc();
			w->idle_polls = 0;
			continue;
		}
		if (eng->input_done && !rx_on &&
		    __atomic_load_n(&eng->rx_stopped, __ATOMIC_ACQUIRE) == want_stopped &&
		    rte_ring_empty(w->ring))
			break;
		if (!w->cfg->end_idle_ms) {
			/* live: capture time is wall time, idle flows age without traffic */
			w->now_ns = wall_ns();
			flow_expire(w->ft, w->now_ns, DPE_EXPIRE_PER_BURST);
			flow_trim(w->ft, w->now_ns, DPE_EXPIRE_PER_BURST);
			cpu_publish(w);
		}
		batch_flush(w); /* going idle: nothing waits for more traffic */
		nap(&w->idle_polls, w->cfg->end_idle_ms > 0, &w->meter);
	}
	w->idle_polls = DPE_IDLE_POLLS + 1;
	awake(&w->idle_polls, &w->meter); /* the final flush is work */
	w->st->peak_flows = flow_counters(w->ft)->peak;
	/* flows already idle end as such, not as "capture-end" (a turn ends
	 * at most DPE_EXPIRE_PER_BURST, so after the last packet some wait) */
	flow_expire(w->ft, w->now_ns, UINT32_MAX);
	flow_end_all(w->ft, "capture-end");
	batch_flush(w);
	if (w->cfg->worker_poll)
		w->cfg->worker_poll(w->cfg->app, w->id, true);
	w->busy_tsc = rte_rdtsc();
	w->st->cpu_s = meter_total(&w->meter);
	return 0;
}

/* ---- main lcore: rx, reassembly, dispatch ---- */

static void
dispatch(struct rte_mbuf *mb, const struct pkt_info *in, struct dpe_port_stats *ps)
{
	unsigned nw = eng->cfg->nworkers;
	struct flow_key k;
	flow_key_make(in->src, in->sport, in->dst, in->dport, &k);
	struct worker *w = eng->w[nw == 1 ? 0 : flow_key_hash(&k) % nw];
	unsigned polls = 0;
	while (rte_ring_enqueue(w->ring, mb) != 0) {
		if (!eng->cfg->end_idle_ms) {
			ps->ring_full_drops++;
			rte_pktmbuf_free(mb);
			return;
		}
		nap(&polls, true, &eng->main_meter); /* replay: lossless, wait for the worker */
	}
	awake(&polls, &eng->main_meter);
}

/* Give one fragment to rte_ip_frag; the whole datagram when it is complete.
 * Its clock is capture time (ts, ns; the table's max_cycles is the TTL in
 * ns), so that a datagram's lifetime is the capture's, the same in replay
 * as on the wire, and testable at the boundary: an entry is stale once
 * ts > start + DPE_FRAG_TTL_MS (rte_ip_frag's test), kept at exactly that.
 * rte_ip_frag wants l2_len/l3_len set, the headers in the first segment,
 * and (IPv6) the fragment header right after the fixed header; trailing
 * Ethernet padding would count as payload, so it is trimmed first. */
static struct rte_mbuf *
reassemble(struct rte_ip_frag_tbl *frag, struct rte_ip_frag_death_row *dr, struct rte_mbuf *mb,
           const struct pkt_info *in, uint64_t ts, struct dpe_port_stats *ps)
{
	uint32_t want;
	if (in->ip_version == 4 && mb->data_len >= in->l4_off) {
		struct rte_ipv4_hdr *ip =
		        rte_pktmbuf_mtod_offset(mb, struct rte_ipv4_hdr *, in->l3_off);
		want = in->l3_off + rte_be_to_cpu_16(ip->total_length);
		if (rte_pktmbuf_pkt_len(mb) > want)
			rte_pktmbuf_trim(mb, (uint16_t)(rte_pktmbuf_pkt_len(mb) - want));
		mb->l2_len = in->l3_off;
		mb->l3_len = (uint16_t)(in->l4_off - in->l3_off);
		return rte_ipv4_frag_reassemble_packet(frag, dr, mb, ts, ip);
	}
	if (in->ip_version == 6 && in->frag_hdr_off == in->l3_off + sizeof(struct rte_ipv6_hdr) &&
	    mb->data_len >= in->frag_hdr_off + sizeof(struct rte_ipv6_fragment_ext)) {
		struct rte_ipv6_hdr *ip =
		        rte_pktmbuf_mtod_offset(mb, struct rte_ipv6_hdr *, in->l3_off);
		struct rte_ipv6_fragment_ext *fh = rte_pktmbuf_mtod_offset(
		        mb, struct rte_ipv6_fragment_ext *, in->frag_hdr_off);
		want = in->l3_off + (uint32_t)sizeof(*ip) + rte_be_to_cpu_16(ip->payload_len);
		if (rte_pktmbuf_pkt_len(mb) > want)
			rte_pktmbuf_trim(mb, (uint16_t)(rte_pktmbuf_pkt_len(mb) - want));
		mb->l2_len = in->l3_off;
		mb->l3_len = (uint16_t)(sizeof(*ip) + sizeof(*fh));
		return rte_ipv6_frag_reassemble_packet(frag, dr, mb, ts, ip, fh);
	}
	/* IPv6 extension headers before the fragment header: rte_ip_frag
	 * cannot rebuild those */
	ps->frag_unsupported++;
	rte_pktmbuf_free(mb);
	return NULL;
}

/* Count, stamp capture time, rebuild fragments, parse to TCP: the mbuf to
 * hand on, or NULL when it was held, dropped or is not TCP (counted in ps).
 * *whole: it is a datagram rebuilt here (in: its segment). */
static struct rte_mbuf *
rx_one(struct rte_mbuf *mb, unsigned port, struct rte_ip_frag_tbl *frag,
       struct rte_ip_frag_death_row *dr, struct dpe_port_stats *ps, uint8_t *lin,
       struct pkt_info *in, bool *whole)
{
	ps->packets++;
	ps->bytes += rte_pktmbuf_pkt_len(mb);
	*whole = false;
	uint64_t ts;
	if (eng->pmd_ts_off >= 0 && (mb->ol_flags & eng->pmd_ts_flag))
		ts = *RTE_MBUF_DYNFIELD(mb, eng->pmd_ts_off, uint64_t *) * eng->ts_mult[port];
	else
		ts = wall_ns();
	*ts_field(mb) = ts;
	mb->packet_type = 0;
	mb->l2_len = 0;
	size_t len;
	const uint8_t *f = frame_of(mb, lin, &len);
	enum pkt_reason r = f ? pkt_parse(f, len, in) : PKT_TRUNCATED;
	if (r == PKT_FRAGMENT) {
		ps->fragments++;
		uint32_t dead = dr->cnt; /* what rte_ip_frag frees goes to the death row */
		struct rte_mbuf *w = reassemble(frag, dr, mb, in, ts, ps);
		ps->frag_drops += dr->cnt - dead;
		if (!w)
			return NULL; /* held, or dropped (counted) */
		ps->reassembled++;
		*ts_field(w) = ts;
		f = frame_of(w, lin, &len);
		r = f ? pkt_parse(f, len, in) : PKT_TRUNCATED;
		mb = w;
		*whole = true;
	}
	ps->reasons[r]++;
	if (r != PKT_TCP) {
		rte_pktmbuf_free(mb);
		return NULL;
	}
	return mb;
}

static void
rx_burst(struct rte_ip_frag_tbl *frag, struct rte_ip_frag_death_row *dr, struct rte_mbuf **m,
         unsigned n, unsigned port)
{
	struct dpe_port_stats *ps = &eng->st->port[port];
	struct rte_mbuf *keep[DPE_BURST];
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++) {
		struct pkt_info in;
		bool whole;
		struct rte_mbuf *mb = rx_one(m[i], port, frag, dr, ps, eng->lin, &in, &whole);
		if (!mb)
			continue;
		if (eng->inline_worker)
			keep[k++] = mb;
		else
			dispatch(mb, &in, ps);
	}
	if (k) {
		/* one worker: it runs right here, on bytes still in this core's cache */
		struct worker *w = eng->w[0];
		uint64_t t0 = rte_rdtsc();
		worker_burst(w, keep, k);
		w->busy_tsc = rte_rdtsc();
		w->busy_cycles += w->busy_tsc - t0;
	}
}

/* RSS mode: the worker whose queue the NIC gives this segment's 4-tuple. */
static unsigned
rss_owner(unsigned port, const struct pkt_info *in)
{
	uint32_t h = flow_rss_hash(in->src, in->sport, in->dst, in->dport);
	unsigned q = eng->reta_size[port] ? eng->reta[port][h % eng->reta_size[port]]
	                                  : h % eng->cfg->nworkers;
	return q < eng->cfg->nworkers ? q : q % eng->cfg->nworkers;
}

/* RSS mode: one burst from each port's queue w->id, run to completion here;
 * a datagram rebuilt from fragments (hashed by the NIC on its addresses
 * alone) goes to the worker owning its 4-tuple over that worker's ring
 * (never waiting: two workers could wait on each other; a full ring drops,
 * counted). Returns whether anything arrived. */
static bool
rss_rx(struct worker *w)
{
	struct rte_mbuf *m[DPE_BURST], *keep[DPE_BURST];
	bool any = false;
	for (unsigned p = 0; p < eng->st->nports; p++) {
		uint16_t n = rte_eth_rx_burst(eng->port_id[p], (uint16_t)w->id, m, DPE_BURST);
		if (!n)
			continue;
		any = true;
		w->last_rx_tsc = rte_rdtsc();
		if (!w->first_rx_tsc)
			w->first_rx_tsc = w->last_rx_tsc;
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++) {
			struct pkt_info in;
			bool whole;
			struct rte_mbuf *mb =
			        rx_one(m[i], p, w->frag, &w->dr, &w->pst[p], w->lin, &in, &whole);
			if (!mb)
				continue;
			unsigned o = whole ? rss_owner(p, &in) : w->id;
			if (o == w->id) {
				keep[k++] = mb;
			} else if (rte_ring_enqueue(eng->w[o]->ring, mb) != 0) {
				w->pst[p].ring_full_drops++;
				rte_pktmbuf_free(mb);
			}
		}
		rte_ip_frag_free_death_row(&w->dr, 3);
		if (k)
			worker_burst(w, keep, k);
	}
	return any;
}

/* RSS mode: the port stage of every worker summed into the run's stats
 * (main lcore only; the workers' own counters are read while they run). */
static void
rss_port_stats(struct dpe_stats *st)
{
	for (unsigned p = 0; p < st->nports; p++) {
		struct dpe_port_stats *t = &st->port[p];
		memset(&t->packets, 0, sizeof(*t) - offsetof(struct dpe_port_stats, packets));
		for (unsigned i = 0; i < st->nworkers; i++) {
			const struct dpe_port_stats *x = &eng->w[i]->pst[p];
			t->packets += x->packets, t->bytes += x->bytes, t->fragments += x->fragments;
			t->reassembled += x->reassembled, t->frag_unsupported += x->frag_unsupported;
			t->frag_drops += x->frag_drops;
			t->ring_full_drops += x->ring_full_drops;
			for (unsigned r = 0; r < PKT_REASON_COUNT; r++)
				t->reasons[r] += x->reasons[r];
		}
	}
}

static void
tel_name(char *buf, size_t len, const char *name)
{
	/* telemetry names allow no '-' */
	snprintf(buf, len, "%s", name);
	for (char *c = buf; *c; c++)
		if (*c == '-')
			*c = '_';
}

static void
tel_port(struct rte_tel_data *d, const struct dpe_port_stats *p)
{
	char name[32];
	rte_tel_data_add_dict_string(d, "name", p->name);
	rte_tel_data_add_dict_u64(d, "packets", p->packets);
	rte_tel_data_add_dict_u64(d, "bytes", p->bytes);
	for (unsigned r = 0; r < PKT_REASON_COUNT; r++) {
		tel_name(name, sizeof(name), pkt_reason_name((enum pkt_reason)r));
		rte_tel_data_add_dict_u64(d, name, p->reasons[r]);
	}
	rte_tel_data_add_dict_u64(d, "fragments", p->fragments);
	rte_tel_data_add_dict_u64(d, "reassembled", p->reassembled);
	rte_tel_data_add_dict_u64(d, "frag_unsupported", p->frag_unsupported);
	rte_tel_data_add_dict_u64(d, "frag_drops", p->frag_drops);
	rte_tel_data_add_dict_u64(d, "ring_full_drops", p->ring_full_drops);
}

static void
tel_worker(struct rte_tel_data *d, const struct dpe_worker_stats *w)
{
	char name[32];
#define TW(f) rte_tel_data_add_dict_u64(d, #f, w->f)
	TW(packets), TW(bytes), TW(not_smtp), TW(tls_flows), TW(no_flow), TW(flows);
	TW(ended_fin), TW(ended_rst), TW(ended_idle), TW(ended_evicted), TW(ended_capture);
	TW(insert_failed), TW(trimmed), TW(messages), TW(sessions), TW(gaps), TW(peak_flows);
	TW(overlaps_differ), TW(sig_batches), TW(sig_jobs), TW(sig_batch_max);
	TW(lane_blocks), TW(other_blocks);
#undef TW
	/* telemetry has no floating point: CPU time in whole microseconds */
	rte_tel_data_add_dict_u64(d, "cpu_us", (uint64_t)(w->cpu_s * 1e6));
	for (unsigned r = 0; r < DPE_NRESULTS - 1; r++) {
		snprintf(name, sizeof(name), "dkim_%s", dkim_result_name((enum dkim_result)r));
		rte_tel_data_add_dict_u64(d, name, w->results[r]);
	}
	rte_tel_data_add_dict_u64(d, "unsigned_messages", w->results[DPE_NRESULTS - 1]);
}

/* /wireseal/stats: totals; /wireseal/port,N and /wireseal/worker,N: one of
 * each (counters are read while the lcores write them: each value is a
 * whole 64-bit word, the set is not a snapshot). */
static int
tel_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	if (!eng)
		return -1;
	struct dpe_stats *st = eng->st;
	if (strcmp(cmd, "/wireseal/port") == 0 || strcmp(cmd, "/wireseal/worker") == 0) {
		bool port = cmd[10] == 'p';
		char *end;
		unsigned long i = params && *params ? strtoul(params, &end, 10) : ~0ul;
		if (i >= (port ? st->nports : st->nworkers))
			return -1;
		rte_tel_data_start_dict(d);
		if (port)
			tel_port(d, &st->port[i]);
		else
			tel_worker(d, &st->worker[i]);
		return 0;
	}
	struct dpe_port_stats tp = {0};
	struct dpe_worker_stats tw = {0};
	snprintf(tp.name, sizeof(tp.name), "all");
	for (unsigned p = 0; p < st->nports; p++) {
		const struct dpe_port_stats *x = &st->port[p];
		tp.packets += x->packets, tp.bytes += x->bytes, tp.fragments += x->fragments;
		tp.reassembled += x->reassembled, tp.frag_unsupported += x->frag_unsupported;
		tp.frag_drops += x->frag_drops;
		tp.ring_full_drops += x->ring_full_drops;
		for (unsigned r = 0; r < PKT_REASON_COUNT; r++)
			tp.reasons[r] += x->reasons[r];
	}
	for (unsigned i = 0; i < st->nworkers; i++) {
		const struct dpe_worker_stats *w = &st->worker[i];
#define ADD(f) tw.f += w->f
		ADD(packets), ADD(bytes), ADD(not_smtp), ADD(tls_flows), ADD(no_flow), ADD(flows);
		ADD(ended_fin), ADD(ended_rst), ADD(ended_idle), ADD(ended_evicted),
		        ADD(ended_capture);
		ADD(insert_failed), ADD(trimmed), ADD(messages), ADD(sessions), ADD(gaps);
		ADD(overlaps_differ), ADD(peak_flows), ADD(cpu_s); /* each worker's peak: their sum bounds the total */
		ADD(sig_batches), ADD(sig_jobs), ADD(lane_blocks), ADD(other_blocks);
		if (w->sig_batch_max > tw.sig_batch_max)
			tw.sig_batch_max = w->sig_batch_max;
		for (unsigned r = 0; r < DPE_NRESULTS; r++)
			ADD(results[r]);
#undef ADD
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "ports", st->nports);
	rte_tel_data_add_dict_u64(d, "workers", st->nworkers);
	tel_port(d, &tp);
	/* the worker stage in its own dict: its names clash with the ports' */
	struct rte_tel_data *wd = rte_tel_data_alloc();
	if (wd) {
		rte_tel_data_start_dict(wd);
		tel_worker(wd, &tw);
		rte_tel_data_add_dict_container(d, "workers_total", wd, 0);
	}
	return 0;
}

void
dpe_count_message(struct dpe_worker_stats *ws, const struct dp_message_record *rec)
{
	ws->messages++;
	size_t n = rec->dkim ? dkim_verifier_count(rec->dkim) : 0;
	for (size_t i = 0; i < n; i++) {
		unsigned r = (unsigned)dkim_verifier_result(rec->dkim, i)->result;
		if (r < DPE_NRESULTS - 1)
			ws->results[r]++;
	}
	if (n == 0)
		ws->results[DPE_NRESULTS - 1]++;
}

/* Whether port pid can spread flows over nq queues itself, both directions
 * of a connection together (RSS on the TCP 4-tuple with our key). */
static bool
rss_capable(uint16_t pid, unsigned nq)
{
	struct rte_eth_dev_info info;
	if (nq < 2 || rte_eth_dev_info_get(pid, &info) != 0)
		return false;
	uint64_t tcp = RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV6_TCP;
	return info.max_rx_queues >= nq && (info.flow_type_rss_offloads & tcp) == tcp &&
	       (info.hash_key_size == 0 || info.hash_key_size >= FLOW_RSS_KEY_LEN) &&
	       info.hash_key_size <= 64 && info.reta_size <= DPE_RETA_MAX;
}

int
dpe_reta_fill(struct rte_eth_rss_reta_entry64 *r, unsigned size, unsigned nq)
{
	if (size == 0 || size > DPE_RETA_MAX || nq == 0)
		return -1;
	memset(r, 0, sizeof(*r) * ((size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE));
	for (unsigned i = 0; i < size; i++) {
		r[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
		r[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = (uint16_t)(i % nq);
	}
	return 0;
}

int
dpe_reta_read(const struct rte_eth_rss_reta_entry64 *r, unsigned size, unsigned nq, bool read,
              uint16_t *out)
{
	if (size == 0 || size > DPE_RETA_MAX || nq == 0)
		return -1;
	for (unsigned i = 0; i < size; i++)
		out[i] = read ? r[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE]
		              : (uint16_t)(i % nq);
	return 0;
}

/* RSS mode: point the redirection table at the queues round-robin, then read
 * back what the port uses (a PMD may refuse the update; its table is what
 * decides). reta_size 0: the owner is the hash modulo the queue count. */
static void
rss_reta(uint16_t pid, unsigned nq, unsigned pi)
{
	struct rte_eth_dev_info info;
	struct rte_eth_rss_reta_entry64 r[DPE_RETA_MAX / RTE_ETH_RETA_GROUP_SIZE];
	eng->reta_size[pi] = 0;
	if (rte_eth_dev_info_get(pid, &info) != 0 || dpe_reta_fill(r, info.reta_size, nq) != 0)
		return;
	rte_eth_dev_rss_reta_update(pid, r, info.reta_size);
	bool read = rte_eth_dev_rss_reta_query(pid, r, info.reta_size) == 0;
	dpe_reta_read(r, info.reta_size, nq, read, eng->reta[pi]);
	eng->reta_size[pi] = info.reta_size;
}

/* nq receive queues (1: software spreading; > 1: RSS with the symmetric
 * key, one queue per worker). */
static int
setup_port(uint16_t pid, unsigned nq, struct rte_mempool *mp, uint32_t *ts_mult, char *why,
           size_t why_len)
{
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(pid, &info);
	if (rc != 0) {
		snprintf(why, why_len, "port %u: dev_info: %s", pid, rte_strerror(-rc));
		return -1;
	}
	/* net_pcap stamps the capture file's time in microseconds */
	*ts_mult = info.driver_name && strcmp(info.driver_name, "net_pcap") == 0 ? 1000 : 1;
	struct rte_eth_conf conf = {0};
	uint8_t key[64];
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
	if (nq > 1) {
		uint8_t klen = info.hash_key_size ? info.hash_key_size : FLOW_RSS_KEY_LEN;
		flow_rss_key(key, klen);
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = key;
		conf.rx_adv_conf.rss_conf.rss_key_len = klen;
		conf.rx_adv_conf.rss_conf.rss_hf = DPE_RSS_HF & info.flow_type_rss_offloads;
	}
	rc = rte_eth_dev_configure(pid, (uint16_t)nq, 1, &conf);
	for (unsigned q = 0; rc == 0 && q < nq; q++)
		rc = rte_eth_rx_queue_setup(pid, (uint16_t)q, nq > 1 ? DPE_RX_DESC_RSS : DPE_RX_DESC,
		                            (unsigned)rte_eth_dev_socket_id(pid), NULL, mp);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(pid, 0, 64, (unsigned)rte_eth_dev_socket_id(pid), NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(pid);
	if (rc != 0) {
		snprintf(why, why_len, "port %u: setup: %s", pid, rte_strerror(-rc));
		return -1;
	}
	rte_eth_promiscuous_enable(pid);
	return 0;
}

/* DPE_FRAG_FLOWS datagrams in reassembly (rte_ip_frag refuses a new one
 * once that many are held: the count is exact), over 8 times as many slots
 * (DPE_FRAG_FLOWS buckets of 8, a key may sit in either of two buckets), so
 * that a full bucket pair before the count is reached is vanishingly rare
 * (at 1/8 load both of a key's buckets hold 8 with probability ~1e-10; a
 * table of exactly DPE_FRAG_FLOWS slots can refuse well before it is full
 * when keys spread unevenly over the buckets).
 * Lifetime DPE_FRAG_TTL_MS in capture-time ns (see reassemble). */
static struct rte_ip_frag_tbl *
frag_table(void)
{
	return rte_ip_frag_table_create(DPE_FRAG_FLOWS, 8, DPE_FRAG_FLOWS,
	                                (uint64_t)DPE_FRAG_TTL_MS * 1000000u, (int)rte_socket_id());
}

static double
secs(uint64_t cycles)
{
	return (double)cycles / (double)rte_get_tsc_hz();
}

int
dpe_run(const struct dpe_config *cfg, struct dpe_stats *st, char *why, size_t why_len)
{
	memset(st, 0, sizeof(*st));
	if (cfg->nworkers < 1 || cfg->nworkers > DPE_MAX_WORKERS) {
		snprintf(why, why_len, "workers must be 1..%d", DPE_MAX_WORKERS);
		return -1;
	}
	if (cfg->eal_argc >= DPE_MAX_EAL_ARGS) {
		snprintf(why, why_len, "too many EAL arguments");
		return -1;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *argv[DPE_MAX_EAL_ARGS + 1];
	memcpy(argv, cfg->eal_argv, sizeof(char *) * (size_t)cfg->eal_argc);
	argv[cfg->eal_argc] = NULL;
	if (cfg->telemetry) {
		rte_telemetry_register_cmd(
		        "/wireseal/stats", tel_stats,
		        "wireseal dataplane totals: per-port stage and workers_total");
		rte_telemetry_register_cmd("/wireseal/port", tel_stats,
		                           "one port's counters. Parameters: int port index");
		rte_telemetry_register_cmd("/wireseal/worker", tel_stats,
		                           "one worker's counters. Parameters: int worker index");
	}
	if (rte_eal_init(cfg->eal_argc, argv) < 0) {
		snprintf(why, why_len, "EAL init failed: %s", rte_strerror(rte_errno));
		return -1;
	}
	int rc = -1;
	struct rte_mempool *mp = NULL;
	struct rte_ip_frag_tbl *frag = NULL;
	struct engine *e = rte_zmalloc("dpe", sizeof(*e), 64);
	if (!e) {
		snprintf(why, why_len, "out of DPDK memory");
		goto out;
	}
	e->cfg = cfg;
	e->st = st;
	e->pmd_ts_off = -1;
	eng = e;
	/* inline: the one worker runs on the main lcore, no second lcore */
	unsigned need = cfg->inline_worker && cfg->nworkers == 1 ? 1 : cfg->nworkers + 1;
	if (rte_lcore_count() < need) {
		snprintf(why, why_len, "%u workers need %u lcores, the EAL has %u", cfg->nworkers,
		         need, rte_lcore_count());
		goto out;
	}
	for (unsigned i = 0; i < cfg->nexpect_ports; i++) {
		uint16_t pid;
		if (rte_eth_dev_get_port_by_name(cfg->expect_ports[i], &pid) != 0) {
			snprintf(why, why_len,
			         "port %s did not come up (unreadable capture or interface?)",
			         cfg->expect_ports[i]);
			goto out;
		}
	}
	static const struct rte_mbuf_dynfield ts_desc = {.name = "wireseal_capture_ns",
	                                                 .size = sizeof(uint64_t),
	                                                 .align = __alignof__(uint64_t)};
	e->ts_off = rte_mbuf_dynfield_register(&ts_desc);
	mp = rte_pktmbuf_pool_create("dpe_mbufs", DPE_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
	                             (int)rte_socket_id());
	if (e->ts_off < 0 || !mp) {
		snprintf(why, why_len, "mbuf pool: %s", rte_strerror(rte_errno));
		goto out;
	}
	/* RSS when every port can: one queue per worker, no main-lcore hop */
	uint16_t pid;
	e->rss = cfg->nworkers > 1 && !cfg->no_rss;
	RTE_ETH_FOREACH_DEV(pid)
	{
		if (!rss_capable(pid, cfg->nworkers))
			e->rss = false;
	}
	unsigned nq = e->rss ? cfg->nworkers : 1;
	RTE_ETH_FOREACH_DEV(pid)
	{
		if (st->nports == DPE_MAX_PORTS) {
			/* refused rather than left unread: a port we do not poll
			 * would look like a quiet link */
			snprintf(why, why_len, "more than %d ports", DPE_MAX_PORTS);
			goto out;
		}
		if (setup_port(pid, nq, mp, &e->ts_mult[st->nports], why, why_len) != 0)
			goto out;
		if (e->rss)
			rss_reta(pid, nq, st->nports);
		rte_eth_dev_get_name_by_port(pid, st->port[st->nports].name);
		e->port_id[st->nports++] = pid;
	}
	st->rss = e->rss;
	if (st->nports == 0) {
		snprintf(why, why_len, "no ports (give --vdev=net_pcap0,rx_pcap=FILE or a NIC)");
		goto out;
	}
	e->pmd_ts_off = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
	int bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
	e->pmd_ts_flag = bit >= 0 ? 1ULL << bit : 0;
	uint64_t hz = rte_get_tsc_hz();
	frag = frag_table();
	if (!frag) {
		snprintf(why, why_len, "fragment table: %s", rte_strerror(rte_errno));
		goto out;
	}
	st->nworkers = cfg->nworkers;
	for (unsigned i = 0; i < cfg->nworkers; i++) {
		struct worker *w = rte_zmalloc("dpe_worker", sizeof(*w), 64);
		if (!w)
			goto nomem;
		e->w[i] = w;
		w->id = i;
		w->cfg = cfg;
		w->st = &st->worker[i];
		char name[32];
		snprintf(name, sizeof(name), "dpe_ring%u", i);
		/* RSS mode: any worker may hand this one a rebuilt datagram */
		w->ring = rte_ring_create(name, DPE_RING_SIZE, (int)rte_socket_id(),
		                          e->rss ? RING_F_SC_DEQ : RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!w->ring)
			goto nomem;
		if (e->rss) {
			w->frag = frag_table();
			if (!w->frag)
				goto nomem;
		}
		snprintf(name, sizeof(name), "dpe_flows%u", i);
		struct flow_table_config fc = {.name = name,
		                               .capacity = cfg->flows_per_worker,
		                               .idle_ns = cfg->idle_ns,
		                               .trim_ns = (uint64_t)DPE_QUIET_S * 1000000000u,
		                               .socket = (int)rte_socket_id(),
		                               .on_end = on_flow_end,
		                               .on_quiet = on_flow_quiet,
		                               .arg = w};
		struct rte_malloc_socket_stats ms0, ms1;
		rte_malloc_get_socket_stats((int)rte_socket_id(), &ms0);
		w->ft = flow_table_new(&fc, why, why_len);
		rte_malloc_get_socket_stats((int)rte_socket_id(), &ms1);
		st->flow_table_bytes += ms1.heap_allocsz_bytes - ms0.heap_allocsz_bytes;
		if (!w->ft)
			goto out;
		if (cfg->worker_setup(cfg->app, i, w->st, &w->scfg) != 0) {
			snprintf(why, why_len, "worker %u setup failed", i);
			goto out;
		}
		unsigned sb = cfg->sig_batch ? cfg->sig_batch : DPE_SIG_BATCH;
		if (sb > DPE_SIG_BATCH_MAX) {
			snprintf(why, why_len, "signature batch %u is over %u", sb, DPE_SIG_BATCH_MAX);
			goto out;
		}
		if (w->scfg.verify && !w->scfg.pool) {
			/* the batch holds up to sb verifiers at once and hands
			 * them back together: room for them on top of the churn */
			unsigned pmax = DPE_POOL_MAX + (sb > 1 ? sb : 0);
			w->pool = msgstream_pool_new(pmax < MSGSTREAM_POOL_MAX ? pmax : MSGSTREAM_POOL_MAX);
			if (!w->pool)
				goto nomem;
			w->scfg.pool = w->pool;
			/* NULL without AVX-512: OpenSSL hashes, as before */
			w->lanes = ws_hash_lanes_new_sized(DPE_LANE_STAGE);
			msgstream_pool_set_lanes(w->pool, w->lanes);
		}
		/* asynchronous keys (key_ready) decide each message alone: a
		 * waiting message would borrow keys their cache may drop */
		if (sb > 1 && w->scfg.verify && w->scfg.on_message &&
		    !(w->scfg.key_ready && w->scfg.on_parked)) {
			w->batch = sigbatch_new(sb, DPE_SIG_BATCH_WAIT, w->scfg.pool,
			                        w->scfg.on_message, w->scfg.arg);
			if (!w->batch)
				goto nomem;
			w->scfg.batch = w->batch;
		}
	}
	/* one worker on one-queue ports: no ring, no second lcore (the
	 * segment bytes stay in the reading core's cache) */
	e->inline_worker = !e->rss && cfg->nworkers == 1 && cfg->inline_worker;
	st->inline_worker = e->inline_worker;
	unsigned lcore, wi = 0;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (wi == cfg->nworkers || e->inline_worker)
			break;
		rte_eal_remote_launch(worker_main, e->w[wi++], lcore);
	}
	struct rte_ip_frag_death_row dr = {0};
	struct rte_mbuf *m[DPE_BURST];
	uint64_t idle_cycles = hz / 1000 * cfg->end_idle_ms, last_rx = rte_rdtsc(), first = 0,
	         last_progress = 0;
	unsigned idle_polls = 0;
	meter_start(&e->main_meter);
	uint64_t rx_cycles = 0; /* TSC cycles in bursts that brought packets: read, parse, (inline) work */
	for (;;) {
		bool any = false;
		if (e->rss) {
			/* the workers poll; the main lcore watches for the end */
			uint64_t l = 0;
			for (unsigned i = 0; i < cfg->nworkers; i++) {
				if (e->w[i]->last_rx_tsc > l)
					l = e->w[i]->last_rx_tsc;
				if (e->w[i]->first_rx_tsc &&
				    (!first || e->w[i]->first_rx_tsc < first))
					first = e->w[i]->first_rx_tsc;
			}
			any = l > last_rx;
			if (any)
				last_rx = l;
			rte_delay_us_sleep(1000);
		}
		for (unsigned p = 0; !e->rss && p < st->nports; p++) {
			uint64_t r0 = rte_rdtsc();
			uint16_t n = rte_eth_rx_burst(e->port_id[p], 0, m, DPE_BURST);
			if (!n)
				continue;
			any = true;
			awake(&idle_polls, &e->main_meter); /* before the work: it counts */
			rx_burst(frag, &dr, m, n, p);
			rx_cycles += rte_rdtsc() - r0;
			rte_ip_frag_free_death_row(&dr, 3);
		}
		uint64_t now = rte_rdtsc();
		if (any && !e->rss) {
			if (!first)
				first = now;
			last_rx = now;
		} else if (!e->rss) {
			nap(&idle_polls, cfg->end_idle_ms > 0, &e->main_meter);
		}
		if (!any && cfg->end_idle_ms && now - last_rx > idle_cycles)
			break;
		if (!any && e->inline_worker)
			batch_flush(e->w[0]); /* going idle: nothing waits for more traffic */
		if (!any && e->inline_worker && !cfg->end_idle_ms) {
			/* live, inline: idle flows age without traffic */
			struct worker *w0 = e->w[0];
			w0->now_ns = wall_ns();
			flow_expire(w0->ft, w0->now_ns, DPE_EXPIRE_PER_BURST);
			flow_trim(w0->ft, w0->now_ns, DPE_EXPIRE_PER_BURST);
		}
		if (cfg->stop && *cfg->stop)
			break;
		if ((cfg->progress || cfg->telemetry) && now - last_progress > hz / 4) {
			last_progress = now;
			if (e->inline_worker && rx_cycles) /* the worker's share, as at the end */
				st->worker[0].cpu_s = meter_total(&e->main_meter) *
				                      (double)e->w[0]->busy_cycles / (double)rx_cycles;
			if (e->rss)
				rss_port_stats(st);
			st->wall_s = first ? secs(last_rx - first) : 0;
			if (cfg->progress)
				cfg->progress(cfg->app, st);
		}
	}
	/* processing time: first packet to the workers' last burst, plus the
	 * capture-end flush, leaving out the end-of-input wait between them */
	if (e->inline_worker) {
		/* the worker's share of the lcore's CPU time: its share of
		 * the cycles spent on bursts (a clock read per burst would
		 * cost a system call each, here about a tenth of a burst's
		 * work; preemption falls on both shares alike) */
		double loop = meter_total(&e->main_meter);
		double share = rx_cycles ? (double)e->w[0]->busy_cycles / (double)rx_cycles : 0;
		double c0 = thread_cpu_s();
		st->worker[0].peak_flows = flow_counters(e->w[0]->ft)->peak;
		flow_expire(e->w[0]->ft, e->w[0]->now_ns, UINT32_MAX); /* as worker_main */
		flow_end_all(e->w[0]->ft, "capture-end");
		batch_flush(e->w[0]);
		e->w[0]->busy_tsc = rte_rdtsc();
		st->worker[0].cpu_s = loop * (share < 1 ? share : 1) + (thread_cpu_s() - c0);
	}
	st->main_cpu_s = meter_total(&e->main_meter) - (e->inline_worker ? st->worker[0].cpu_s : 0);
	if (st->main_cpu_s < 0)
		st->main_cpu_s = 0;
	uint64_t busy = last_rx;
	for (unsigned i = 0; i < cfg->nworkers; i++)
		if (e->w[i]->busy_tsc > busy)
			busy = e->w[i]->busy_tsc;
	uint64_t flush_start = rte_rdtsc();
	e->input_done = true;
	rte_eal_mp_wait_lcore();
	uint64_t flush_end = flush_start;
	for (unsigned i = 0; i < cfg->nworkers; i++)
		if (e->w[i]->busy_tsc > flush_end)
			flush_end = e->w[i]->busy_tsc;
	st->wall_s = first ? secs(busy - first) + secs(flush_end - flush_start) : 0;
	if (e->rss)
		rss_port_stats(st);
	rte_ip_frag_free_death_row(&dr, 0);
	rc = 0;
	goto out;
nomem:
	snprintf(why, why_len, "out of DPDK memory for the workers");
out:
	if (e) {
		for (unsigned i = 0; i < DPE_MAX_WORKERS; i++) {
			if (!e->w[i])
				continue;
			flow_table_free(e->w[i]->ft, "capture-end");
			/* after the table (its sessions' ends run the batch), before
			 * the pool (its verifiers go back there) */
			sigbatch_free(e->w[i]->batch);
			/* after the table: its sessions hand their verifiers back */
			msgstream_pool_free(e->w[i]->pool);
			/* after the pool (members of parked messages keep it until
			 * they are freed) */
			ws_hash_lanes_free(e->w[i]->lanes);
			if (e->w[i]->frag) {
				rte_ip_frag_free_death_row(&e->w[i]->dr, 0);
				rte_ip_frag_table_destroy(e->w[i]->frag);
			}
			rte_ring_free(e->w[i]->ring);
			rte_free(e->w[i]);
		}
		for (unsigned p = 0; p < st->nports; p++) {
			rte_eth_dev_stop(e->port_id[p]);
			rte_eth_dev_close(e->port_id[p]);
		}
	}
	if (frag) /* not NULL-safe in DPDK 22.11 (an early failure has none) */
		rte_ip_frag_table_destroy(frag);
	rte_mempool_free(mp);
	eng = NULL;
	rte_free(e);
	rte_eal_cleanup();
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	st->total_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return rc;
}

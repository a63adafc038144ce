/*
 * dpe: the DPDK engine of wireseal-dp and `wireseal replay`. One per process
 * (one EAL per process): dpe_run brings the EAL up, runs, and tears it down.
 *
 * Threads, three modes chosen at start (dpe_stats says which):
 *  - RSS (nworkers > 1 and every port offers nworkers rx queues with RSS on
 *    the TCP 4-tuple): each port gets one queue per worker and the
 *    symmetric Toeplitz key (flow_rss_key), so the NIC puts both directions
 *    of a connection on one queue; worker w polls queue w of every port and
 *    runs to completion (own fragment table; a datagram rebuilt from
 *    fragments, which the NIC hashes on addresses only, goes to the worker
 *    owning its 4-tuple by the port's redirection table, over that worker's
 *    ring). The main lcore only watches for the end and sums counters.
 *  - software (one worker, or a port with one queue: net_pcap,
 *    net_af_packet, net_ring): the main lcore polls every port's queue 0 in
 *    bursts of DPE_BURST, stamps capture time, reassembles fragments
 *    (rte_ip_frag), parses to the TCP header and hands each segment to
 *    worker flow_key_hash(sorted endpoints) % nworkers over its rte_ring.
 *    (The other software design, every worker reading the one queue and
 *    dropping flows it does not own, cannot work here: a DPDK queue has one
 *    reader.)
 *  - inline (asked for; one worker, one-queue ports): the main lcore reads
 *    and runs the worker's stage itself, no ring and no second lcore, so a
 *    segment's bytes are parsed while still in the cache of the core that
 *    read them (a ring hop moves every byte across cores: measured 1.8x on
 *    the no-verify worker stage). The worker's cpu_s is then its share of
 *    the lcore's CPU time, by TSC cycles spent in it against all bursts.
 * Replay mode: an lcore idle for DPE_IDLE_POLLS polls sleeps DPE_NAP_US, so
 * its CPU time (dpe_worker_stats.cpu_s, dpe_stats.main_cpu_s) is its work.
 * Each worker runs to completion: flow table (struct flow_table, bulk
 * lookup) -> dp_session -> callbacks. Callbacks (cfg->worker_setup's
 * dp_session_config) run on worker lcores.
 *
 * Memory, all sized at start: one mbuf pool (DPE_MBUFS), one ring of
 * DPE_RING_SIZE per worker, one flow table of flows_per_worker per worker,
 * one fragment table (DPE_FRAG_FLOWS datagrams in reassembly; RSS mode: one
 * per worker). RSS needs a redirection table of at most DPE_RETA_MAX entries.
 * A session quiet for DPE_QUIET_S of capture time is trimmed (dp_session_trim:
 * its reassembly rings, line buffers and idle verifier go back).
 * Behaviours at the caps: a full flow table evicts its oldest flow ("evicted");
 * a full ring blocks the main lcore in replay mode (lossless) and drops the
 * packet (counted) in live mode; a full fragment table drops (counted);
 * more than DPE_MAX_PORTS ports, or an EAL vector of DPE_MAX_EAL_ARGS or
 * more, is refused with a reason.
 *
 * End of input: net_pcap never says EOF, so in replay mode (end_idle_ms > 0)
 * the run ends once every port was idle end_idle_ms; live mode ends when
 * *cfg->stop becomes true. Either way flows idle by then end with "idle",
 * every other flow with "capture-end".
 */
#ifndef WS_DATAPLANE_DPE_H
#define WS_DATAPLANE_DPE_H

#include <stdbool.h>
#include <stdint.h>

#include "pkt.h"
#include "session.h"

#define DPE_BURST 32
#define DPE_MAX_WORKERS 16
#define DPE_MAX_PORTS 32
#define DPE_MAX_SMTP_PORTS 8
#define DPE_MAX_EAL_ARGS 64 /* EAL argument vector, argv[0] included, is shorter */
#define DPE_RING_SIZE 4096u   /* mbufs queued per worker */
#define DPE_MBUFS 16383u      /* mbuf pool (2^n - 1 is the mempool sweet spot) */
#define DPE_FRAG_FLOWS 4096u  /* IP datagrams in reassembly at once; one more is refused */
#define DPE_FRAG_TTL_MS 2000u /* capture time: an incomplete datagram older is dropped */
#define DPE_RETA_MAX 512u     /* RSS redirection table entries we set and read back at most */
#define DPE_QUIET_S 10u       /* a session quiet this long (capture time) gives back its buffers */
/* Signature batch (sigbatch.h): a worker verifies the signatures of the
 * messages that end close together in one ws_sig_verify_batch, run once it
 * holds DPE_SIG_BATCH jobs (config sig_batch: 1 = off, up to
 * DPE_SIG_BATCH_MAX), when the worker goes idle, at the end of input,
 * before any other record, or when its oldest message has waited
 * DPE_SIG_BATCH_WAIT receive bursts. Records and their order are the same
 * with and without it. */
#define DPE_SIG_BATCH 8u
#define DPE_SIG_BATCH_MAX 64u /* = SIGBATCH_MAX */
#define DPE_SIG_BATCH_WAIT 16u
#define DPE_NRESULTS 8        /* DKIM results by enum dkim_result, + message without signature */

struct dpe_port_stats {
	char name[64];
	uint64_t packets, bytes;
	uint64_t reasons[PKT_REASON_COUNT]; /* what pkt_parse said (after reassembly) */
	uint64_t fragments, reassembled, frag_unsupported;
	/* fragments rte_ip_frag freed: refused (DPE_FRAG_FLOWS held, a bad
	 * fragment) or of a datagram that outlived DPE_FRAG_TTL_MS */
	uint64_t frag_drops;
	uint64_t ring_full_drops; /* live mode only */
};

struct dpe_worker_stats {
	uint64_t packets, bytes;
	uint64_t not_smtp, no_flow; /* segments no session was made for */
	uint64_t tls_flows;         /* flows on an implicit-TLS port (also in flows) */
	uint64_t flows, ended_fin, ended_rst, ended_idle, ended_evicted, ended_capture,
	        insert_failed;
	uint64_t trimmed; /* quiet sessions whose buffers were released (dp_session_trim) */
	uint64_t messages, sessions, gaps;
	uint64_t overlaps_differ; /* segments whose overlap with held bytes differed (evasion signal) */
	uint64_t results[DPE_NRESULTS]; /* signature results, [DPE_NRESULTS-1]: unsigned messages */
	double cpu_s; /* the worker thread's CPU time (replay: idle time sleeps, so this is work) */
	uint64_t peak_flows; /* most flows open at once */
	/* signature batches run, the jobs (signatures) in them, the fullest */
	uint64_t sig_batches, sig_jobs, sig_batch_max;
	/* body SHA-256 blocks compressed in 16-lane passes, and otherwise */
	uint64_t lane_blocks, other_blocks;
} __attribute__((aligned(64)));

struct dpe_stats {
	unsigned nports, nworkers;
	struct dpe_port_stats port[DPE_MAX_PORTS];
	struct dpe_worker_stats worker[DPE_MAX_WORKERS];
	bool rss;       /* the ports spread flows over the workers (RSS mode) */
	bool inline_worker; /* one worker, run on the main lcore (no ring) */
	double wall_s;  /* first packet to end of input (replay: without the idle wait) */
	double total_s; /* whole run including EAL start */
	double main_cpu_s; /* main lcore's CPU time from its first poll to the end of input */
	uint64_t flow_table_bytes; /* DPDK heap taken by the flow tables (all slots) */
};

struct dpe_config {
	int eal_argc; /* complete EAL argument vector, argv[0] included */
	char **eal_argv;
	const char *const
	        *expect_ports; /* ethdev names that must exist (vdev probes fail silently) */
	unsigned nexpect_ports;
	unsigned nworkers; /* 1 .. DPE_MAX_WORKERS; the EAL needs nworkers + 1 lcores */
	uint16_t smtp_ports[DPE_MAX_SMTP_PORTS];
	unsigned nsmtp_ports;
	uint16_t tls_ports[DPE_MAX_SMTP_PORTS]; /* implicit TLS (465): session facts only */
	unsigned ntls_ports;
	uint32_t flows_per_worker;
	uint64_t idle_ns;     /* flow idle timeout in capture time */
	unsigned end_idle_ms; /* > 0: replay mode */
	volatile bool *stop;  /* live mode: set (by a signal handler) to stop */
	bool telemetry;       /* register /wireseal/stats (needs an EAL with telemetry on) */
	bool no_rss;          /* software spreading even where the ports offer RSS */
	bool inline_worker;   /* one worker on one-queue ports: run it on the main lcore */
	unsigned sig_batch;   /* jobs per signature batch: 0 = DPE_SIG_BATCH, 1 = off */
	/* Fills worker w's session config (callbacks and their arg); the
	 * worker's counters are passed so callbacks can count messages/results.
	 * Returns 0, or -1 to abort the run. Runs on the main lcore at start. */
	int (*worker_setup)(void *app, unsigned w, struct dpe_worker_stats *ws,
	                    struct dp_session_config *out);
	void (*progress)(void *app,
	                 const struct dpe_stats *st); /* main lcore, ~4 per s; may be NULL */
	/* May be NULL. Worker w's loop calls it every turn (after a burst, and
	 * while idle) so that work finished elsewhere (key answers for parked
	 * messages) comes back on the worker's own lcore; it must be cheap when
	 * there is nothing to do. final: the worker's flows have all ended, the
	 * last call (finish or give up on what is still waiting). */
	void (*worker_poll)(void *app, unsigned w, bool final);
	void *app;
};

/* 0 on success; -1 with why filled (EAL refused, a port missing, memory). */
int dpe_run(const struct dpe_config *cfg, struct dpe_stats *st, char *why, size_t why_len);

/* RSS redirection table of size entries (a port's reta_size) in DPDK's
 * groups of RTE_ETH_RETA_GROUP_SIZE: dpe_reta_fill points entry i at queue
 * i % nq (every entry's mask bit set); dpe_reta_read copies the table back
 * into out[size] (read: as the port returned it in r; not read: the
 * round robin that was asked for). Both return -1, touching nothing, when
 * size is 0 or over DPE_RETA_MAX (the port is then not used with RSS) or nq
 * is 0. r holds size / RTE_ETH_RETA_GROUP_SIZE groups, rounded up. */
struct rte_eth_rss_reta_entry64;
int dpe_reta_fill(struct rte_eth_rss_reta_entry64 *r, unsigned size, unsigned nq);
int dpe_reta_read(const struct rte_eth_rss_reta_entry64 *r, unsigned size, unsigned nq, bool read,
                  uint16_t *out);

/* Counting helper for callbacks: tally one message's DKIM results. */
void dpe_count_message(struct dpe_worker_stats *ws, const struct dp_message_record *rec);

#endif

/* metrics: Prometheus text exposition over libmicrohttpd (see metrics.h). */
#include "metrics.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <microhttpd.h>

struct met_server {
	struct MHD_Daemon *mhd;
	struct event *ev_io, *ev_tick;
	met_render_cb render;
	void *arg;
	uint64_t scrapes;
};

bool
met_name_ok(const char *name, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

int
met_family(FILE *f, const char *name, const char *type, const char *help)
{
	if (!met_name_ok(name, strlen(name)))
		return -1;
	fprintf(f, "# HELP %s ", name);
	for (const char *p = help; *p; p++) { /* HELP escapes \ and newline */
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fprintf(f, "\n# TYPE %s %s\n", name, type);
	return 0;
}

int
met_sample(FILE *f, const char *name, const char *const *labels, size_t nlabels, double v)
{
	if (!met_name_ok(name, strlen(name)))
		return -1;
	for (size_t i = 0; i < nlabels; i++)
		if (!met_name_ok(labels[2 * i], strlen(labels[2 * i])) || labels[2 * i][0] == ':')
			return -1;
	fputs(name, f);
	if (nlabels) {
		fputc('{', f);
		for (size_t i = 0; i < nlabels; i++) {
			fprintf(f, "%s%s=\"", i ? "," : "", labels[2 * i]);
			for (const char *p = labels[2 * i + 1]; *p; p++) {
				if (*p == '\\' || *p == '"')
					fputc('\\', f), fputc(*p, f);
				else if (*p == '\n')
					fputs("\\n", f);
				else
					fputc(*p, f);
			}
			fputc('"', f);
		}
		fputc('}', f);
	}
	if (isnan(v))
		fputs(" NaN\n", f);
	else if (v == floor(v) && fabs(v) < 9e15)
		fprintf(f, " %.0f\n", v);
	else
		fprintf(f, " %.9g\n", v);
	return 0;
}

void
met_render_counters(FILE *f, const struct met_counters *c)
{
#define MET_RENDER(field, type, name, help)      \
	met_family(f, name, #type, help);        \
	met_sample(f, name, NULL, 0, (double)c->field);
	MET_FOREACH_COUNTER(MET_RENDER)
#undef MET_RENDER
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	struct met_server *s = cls;
	struct MHD_Response *r;
	unsigned code = MHD_HTTP_OK;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static char msg[] = "method not allowed\n";
		r = MHD_create_response_from_buffer(sizeof(msg) - 1, msg, MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics") != 0) {
		static char msg[] = "not found: try /metrics\n";
		r = MHD_create_response_from_buffer(sizeof(msg) - 1, msg, MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_NOT_FOUND;
	} else {
		size_t len = 0;
		char *body = s->render(s->arg, &len);
		if (!body || len > MET_MAX_BODY) {
			free(body);
			static char msg[] = "metrics unavailable\n";
			r = MHD_create_response_from_buffer(sizeof(msg) - 1, msg, MHD_RESPMEM_PERSISTENT);
			code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		} else {
			s->scrapes++;
			r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
			if (r)
				MHD_add_response_header(r, "Content-Type",
							"text/plain; version=0.0.4; charset=utf-8");
			else
				free(body);
		}
	}
	if (!r)
		return MHD_NO;
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static void
on_io(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct met_server *s = arg;
	MHD_run(s->mhd);
}

struct met_server *
met_server_start(struct event_base *base, const char *addr, unsigned port, met_render_cb render,
		 void *arg, char *why, size_t whylen)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	const struct sockaddr *sa;
	unsigned flags = MHD_USE_EPOLL;
	if (port == 0 || port > 65535) {
		snprintf(why, whylen, "metrics: bad port %u", port);
		return NULL;
	}
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sa = (const struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1) {
		sa = (const struct sockaddr *)&sin6;
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(why, whylen, "metrics: %s is not an IP address", addr);
		return NULL;
	}
	struct met_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	s->render = render;
	s->arg = arg;
	s->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR, sa,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(why, whylen, "metrics: cannot listen on %s port %u", addr, port);
		goto fail;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		snprintf(why, whylen, "metrics: no epoll descriptor from libmicrohttpd");
		goto fail;
	}
	s->ev_io = event_new(base, info->epoll_fd, EV_READ | EV_PERSIST, on_io, s);
	/* MHD's own timeouts (idle connections) need a periodic run as well */
	s->ev_tick = event_new(base, -1, EV_PERSIST, on_io, s);
	struct timeval tick = {1, 0};
	if (!s->ev_io || !s->ev_tick || event_add(s->ev_io, NULL) != 0 ||
	    event_add(s->ev_tick, &tick) != 0) {
		snprintf(why, whylen, "metrics: event setup failed");
		goto fail;
	}
	return s;
fail:
	met_server_stop(s);
	return NULL;
}

void
met_server_stop(struct met_server *s)
{
	if (!s)
		return;
	if (s->ev_io)
		event_free(s->ev_io);
	if (s->ev_tick)
		event_free(s->ev_tick);
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	free(s);
}

uint64_t
met_server_scrapes(const struct met_server *s)
{
	return s ? s->scrapes : 0;
}

/* client.c: XMPP streams over libstrophe (client.h). */
#include "client.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <strophe.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "jid.h"
#include "log.h"
#include "roster.h"
#include "sasl.h"
#include "scram.h"
#include "seal.h"
#include "smacks.h"
#include "tlsread.h"

#define CLIENT_NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define CLIENT_NS_CAPS "http://jabber.org/protocol/caps"
#define CLIENT_NS_HINTS "urn:xmpp:hints"
#define CLIENT_NS_NOSAVE "google:nosave"
#define CLIENT_NS_DELAY "urn:xmpp:delay"
#define CLIENT_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define CLIENT_NS_RECEIPTS "urn:xmpp:receipts"
#define CLIENT_NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define CLIENT_NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define CLIENT_NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define CLIENT_NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define CLIENT_MECHS_MAX 16
#define CLIENT_NS_VCARD_UPDATE "vcard-temp:x:update"
/*
 * libstrophe waits in select(): a descriptor at FD_SETSIZE or above
 * corrupts memory (Debian's fortified build aborts). Refuse sockets well
 * before that; main.c also caps RLIMIT_NOFILE so open() fails cleanly.
 */
#define CLIENT_FD_LIMIT 1000
#define CLIENT_GROUPS_MAX 32
/* Kinds of query.c reply handlers (vCard, services, roster set, ...). */
#define CLIENT_QUERY_KINDS 8

/* Where a stream's negotiation stands (the order matters). */
enum client_raw_step { CLIENT_RAW_TLS, CLIENT_RAW_AUTH, CLIENT_RAW_BIND,
		       CLIENT_RAW_RESUME, CLIENT_RAW_DONE };

struct client {
	struct client_ctx *cx;
	struct client_shard *shard;
	xmpp_ctx_t *ctx; /* its shard's */
	xmpp_conn_t *conn;
	const struct client_events *ev;
	void *ud;
	int online;
	int dropping; /* given up for a server that stopped acknowledging */
	int certfail;
	int limit;
	int nosave; /* the server advertises google:nosave */
	client_iq_handler query_handlers[CLIENT_QUERY_KINDS];
	/* The stream is negotiated here (libstrophe's raw mode). */
	char *secret;       /* password or token; wiped when freed */
	int token;          /* secret is a token */
	const char *mech;   /* token: the mechanism asked for, NULL: any */
	struct scram *scram; /* a password's SCRAM exchange under way */
	int scram_step;     /* 0: first sent, 1: final sent, 2: server proven */
	enum client_raw_step step;
	int authfail;       /* the server refused the secret (or our JID) */
	enum client_error raw_error; /* a stream error seen in raw mode */
	char *bound;        /* the JID the server bound */
	int need_session;   /* the server wants RFC 3921 sessions */
	int sm_offered;     /* the server offers XEP-0198 */
	int resumed;        /* resumed, not bound: the server kept our presence */
	struct smacks sm;
	int sm_listed;      /* in its context's sm_list */
	struct client *sm_next, *sm_prev;
	size_t nquery_handlers;
	struct client *shard_next, *shard_prev; /* its shard's clients */
};

/*
 * Connections are spread over CLIENT_SHARDS libstrophe contexts, and a
 * pass runs only the contexts with something to do: xmpp_run_once()
 * select()s and walks every connection of its context, which with 900
 * sessions in one context cost more than a message request's own work
 * (perf: select 43 % of the daemon). An epoll set over every stream's
 * socket says which shard has input.
 */
/* 4, not more: each shard run costs a select() and a walk of its own, and
 * a login storm runs many (300 logins: 1 shard 2.58 s, 4 2.77 s, 16
 * 3.68 s), while 4 already keep a request from paying for 900 sessions
 * (900 sessions: 4270 req/s, one context 1430). */
#define CLIENT_SHARDS 4
/* Runs of a shard after its last input when tlsread.h cannot tell
 * whether OpenSSL holds more: libstrophe reads at most 4 KiB per
 * connection and run, and a record carries up to 16 KiB. */
#define CLIENT_HOT_RUNS 4
/* Every shard runs at least this often, for libstrophe's own timers. */
#define CLIENT_FULL_RUN_MS 1000
#define CLIENT_EVENTS 64
/* Stanzas the server may leave unacknowledged (or libstrophe unwritten)
 * before the stream counts as congested: a quarter of the limit at which
 * it is dropped, about 0.1-0.2 s of Prosody's work at full load. */
#define CLIENT_BACKLOG_MAX (SMACKS_QUEUE_MAX / 4)
/* The shard number that marks client_ctx_watch()'s descriptor. */
#define CLIENT_WATCHED CLIENT_SHARDS

struct client_shard {
	xmpp_ctx_t *ctx;
	struct client *clients;
	size_t nclients;
	int input;   /* its sockets showed input since it last ran */
	int hot;     /* runs left after input */
	int dirty;   /* something was queued to send */
	int pending; /* a send queue was not empty after its last run */
};

struct client_ctx {
	struct client_shard shard[CLIENT_SHARDS];
	int epfd;
	int watched_ready; /* client_ctx_watch()'s descriptor had input */
	int64_t full_due_ms;
	/* Clients whose stream management may have something to send. */
	struct client *sm_list;
	xmpp_log_t log;
	const struct config *cfg;
};

/* libstrophe's callbacks that carry no userdata find their client here;
 * there is one context per process, owned by the loop thread. */
static struct client_ctx *client_the_ctx;

const char *client_strerror(enum client_error e)
{
	static const char *const names[] = {
		"ok", "authentication failed", "certificate not trusted",
		"network error", "resource conflict", "stream error",
		"descriptor or memory limit"};
	return (size_t)e < sizeof(names) / sizeof(names[0]) ? names[e] : "?";
}

/* Stanza dumps arrive at debug level and hold message bodies and SASL
 * exchanges: they are never logged. */
static void client_log(void *ud, xmpp_log_level_t level, const char *area,
		       const char *msg)
{
	(void)ud;
	if (level == XMPP_LEVEL_ERROR)
		log_error("xmpp %s: %s", area, msg);
	else if (level == XMPP_LEVEL_WARN)
		log_warn("xmpp %s: %s", area, msg);
}

/*
 * libstrophe 0.12 builds an OpenSSL context for every connection and calls
 * SSL_CTX_set_default_verify_paths() on each, which parses the system's
 * whole CA bundle (SSL_CERT_FILE: about 815 KiB and 35 ms per connection
 * with Debian's). An empty file there leaves the system's hashed CA
 * directory (SSL_CERT_DIR, /etc/ssl/certs on Debian), from which OpenSSL
 * loads only the certificates a chain needs, when it needs them; the same
 * CAs are trusted. xmpp.cafile / xmpp.capath still add their own. An
 * SSL_CERT_FILE already in the environment is left alone. Runs before any
 * thread exists (setenv is not thread-safe).
 */
static void client_lazy_system_store(void)
{
	const char *set = getenv("SSL_CERT_FILE");

	if (set) { /* the admin's choice stands, whatever it costs */
		log_info("SSL_CERT_FILE=%s is loaded for every connection", set);
		return;
	}
	if (setenv("SSL_CERT_FILE", "/dev/null", 0) == -1)
		log_warn("SSL_CERT_FILE not set: each connection loads the "
			 "whole CA bundle");
}

struct client_ctx *client_ctx_new(const struct config *cfg)
{
	struct client_ctx *cx = calloc(1, sizeof(*cx));

	if (!cx)
		return NULL;
	client_lazy_system_store();
	xmpp_initialize();
	cx->log.handler = client_log;
	cx->cfg = cfg;
	cx->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cx->epfd == -1)
		log_error("epoll_create1: %m");
	for (size_t i = 0; cx->epfd != -1 && i < CLIENT_SHARDS; i++)
		if (!(cx->shard[i].ctx = xmpp_ctx_new(NULL, &cx->log))) {
			log_error("cannot create the XMPP contexts");
			break;
		}
	if (!cx->shard[CLIENT_SHARDS - 1].ctx) {
		client_ctx_free(cx);
		return NULL;
	}
	client_the_ctx = cx;
	return cx;
}

void client_ctx_free(struct client_ctx *cx)
{
	if (!cx)
		return;
	for (size_t i = 0; i < CLIENT_SHARDS; i++)
		while (cx->shard[i].clients)
			client_free(cx->shard[i].clients);
	for (size_t i = 0; i < CLIENT_SHARDS; i++)
		if (cx->shard[i].ctx)
			xmpp_ctx_free(cx->shard[i].ctx);
	if (cx->epfd != -1)
		close(cx->epfd);
	xmpp_shutdown();
	if (client_the_ctx == cx)
		client_the_ctx = NULL;
	free(cx);
}

static int64_t client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_sm_list(struct client *c);

/*
 * libstrophe queues a stream's header and its close as its own output,
 * which xmpp_conn_send_queue_len() leaves out: the shard is marked, as
 * for every other send, or they would wait for the periodic run of every
 * shard (a failed login answered a second late).
 */
static void client_open_stream(struct client *c)
{
	xmpp_conn_open_stream_default(c->conn);
	c->shard->dirty = 1;
}

static void client_close_stream(struct client *c)
{
	xmpp_disconnect(c->conn);
	c->shard->dirty = 1;
}

/* Queues st on c's stream, its shard writes it in the next pass; a copy
 * stays until the server acknowledges it (smacks.h). 0, or -1 when it
 * cannot go (logged, once for a stream given up). */
static int client_send(struct client *c, xmpp_stanza_t *st)
{
	char *buf;
	size_t len;
	int r = 0;

	if (c->dropping)
		return -1; /* the stream is closing: nothing more goes on it */
	if (xmpp_stanza_to_text(st, &buf, &len) != XMPP_EOK) {
		log_error("cannot serialize a stanza for %s",
			  xmpp_conn_get_jid(c->conn));
		return -1;
	}
	if (smacks_sent(&c->sm, buf, len) == -1) {
		log_warn("%s: the server leaves %d stanzas unacknowledged (or "
			 "out of memory): reconnecting",
			 xmpp_conn_get_jid(c->conn), SMACKS_QUEUE_MAX);
		c->dropping = 1;
		client_close_stream(c);
		r = -1;
	} else {
		xmpp_send_raw(c->conn, buf, len);
		client_sm_list(c);
	}
	xmpp_free(c->ctx, buf);
	c->shard->dirty = 1;
	return r;
}

int client_congested(const struct client *c)
{
	size_t backlog = c->sm.counting
				 ? c->sm.queued
				 : (size_t)xmpp_conn_send_queue_len(c->conn);

	return backlog >= CLIENT_BACKLOG_MAX;
}

/* Puts c where client_sm_run() looks when its stream management may have
 * something to send: walking every client each pass is what the shards
 * avoid. */
static void client_sm_list(struct client *c)
{
	if (c->sm_listed || !smacks_waiting(&c->sm))
		return;
	c->sm_listed = 1;
	c->sm_prev = NULL;
	c->sm_next = c->cx->sm_list;
	if (c->sm_next)
		c->sm_next->sm_prev = c;
	c->cx->sm_list = c;
}

static void client_sm_unlist(struct client *c)
{
	if (!c->sm_listed)
		return;
	if (c->sm_prev)
		c->sm_prev->sm_next = c->sm_next;
	else
		c->cx->sm_list = c->sm_next;
	if (c->sm_next)
		c->sm_next->sm_prev = c->sm_prev;
	c->sm_listed = 0;
}

/* Stream management's elements are not stanzas: they bypass the count. */
static void client_sm_send(struct client *c, const char *name,
			   const char *attr, const char *value,
			   const char *attr2, const char *value2)
{
	xmpp_stanza_t *el = xmpp_stanza_new(c->ctx);

	if (el && xmpp_stanza_set_name(el, name) == XMPP_EOK &&
	    xmpp_stanza_set_ns(el, SMACKS_NS) == XMPP_EOK &&
	    (!attr || xmpp_stanza_set_attribute(el, attr, value) == XMPP_EOK) &&
	    (!attr2 || xmpp_stanza_set_attribute(el, attr2, value2) == XMPP_EOK))
		xmpp_send(c->conn, el);
	else
		log_error("stream management of %s: out of memory",
			  xmpp_conn_get_jid(c->conn));
	if (el)
		xmpp_stanza_release(el);
	c->shard->dirty = 1;
}

static void client_resumable(struct client *c)
{
	if (c->ev && c->ev->resumable && c->sm.id)
		c->ev->resumable(c->ud);
}

/* The answers and requests whose time has come; *wait_ms lowered to the
 * next one's. */
static void client_sm_run(struct client_ctx *cx, int64_t now, int *wait_ms)
{
	struct client *next;
	char h[16];

	for (struct client *c = cx->sm_list; c; c = next) {
		int due = smacks_due(&c->sm, now, wait_ms);
		next = c->sm_next;
		if (due & SMACKS_ANSWER) {
			snprintf(h, sizeof(h), "%u",
				 (unsigned)smacks_answer(&c->sm, now));
			client_sm_send(c, "a", "h", h, NULL, NULL);
			client_resumable(c);
		}
		if (due & SMACKS_ASK) {
			smacks_ask(&c->sm, now);
			client_sm_send(c, "r", NULL, NULL, NULL, NULL);
		}
		if (!smacks_waiting(&c->sm))
			client_sm_unlist(c);
	}
}

/* Whether a pass should run shard sh, and how soon the next pass must
 * come for it (*wait_ms lowered). */
static int client_shard_due(const struct client_shard *sh, int *wait_ms)
{
	if (sh->input || sh->hot || sh->dirty) {
		*wait_ms = 0;
		return 1;
	}
	if (sh->pending && *wait_ms > 1)
		*wait_ms = 1; /* a full socket: look again soon, not in a spin */
	return sh->pending;
}

static void client_shard_run(struct client_shard *sh)
{
	int input = sh->input;

	sh->input = sh->dirty = 0;
	xmpp_run_once(sh->ctx, 0);
	int left = tlsread_leftover_take();
	if (left >= 0) /* again only while OpenSSL holds input */
		sh->hot = left;
	else
		sh->hot = input ? CLIENT_HOT_RUNS : sh->hot ? sh->hot - 1 : 0;
	sh->pending = 0;
	for (struct client *c = sh->clients; c && !sh->pending; c = c->shard_next)
		sh->pending = xmpp_conn_send_queue_len(c->conn) > 0;
}

/* Marks the shards whose sockets have input; a socket that finished
 * connecting is watched for input only from then on. */
static void client_collect(struct client_ctx *cx, int wait_ms)
{
	struct epoll_event ev[CLIENT_EVENTS];
	int n = epoll_wait(cx->epfd, ev, CLIENT_EVENTS, wait_ms);

	cx->watched_ready = 0;
	for (int i = 0; i < n; i++) {
		int fd = (int)(ev[i].data.u64 & 0xffffffffu);
		size_t shard = (size_t)(ev[i].data.u64 >> 32);

		if (shard == CLIENT_WATCHED) {
			cx->watched_ready = 1;
			continue;
		}
		struct client_shard *sh = &cx->shard[shard];
		sh->input = 1;
		if (ev[i].events & EPOLLOUT) {
			struct epoll_event in = {.events = EPOLLIN,
						 .data = ev[i].data};
			epoll_ctl(cx->epfd, EPOLL_CTL_MOD, fd, &in);
		}
	}
	if (n == -1 && errno != EINTR)
		log_error("epoll_wait: %m");
}

void client_ctx_run_once(struct client_ctx *cx, unsigned long timeout_ms)
{
	int64_t now = client_now_ms();
	int wait_ms = (int)(timeout_ms < CLIENT_FULL_RUN_MS ? timeout_ms
							   : CLIENT_FULL_RUN_MS);

	if (now >= cx->full_due_ms) {
		for (size_t i = 0; i < CLIENT_SHARDS; i++)
			cx->shard[i].input = 1;
		cx->full_due_ms = now + CLIENT_FULL_RUN_MS;
	}
	if (cx->full_due_ms - now < wait_ms)
		wait_ms = (int)(cx->full_due_ms - now);
	client_sm_run(cx, now, &wait_ms);
	for (size_t i = 0; i < CLIENT_SHARDS; i++)
		client_shard_due(&cx->shard[i], &wait_ms);
	client_collect(cx, wait_ms);
	for (size_t i = 0; i < CLIENT_SHARDS; i++) {
		int ignored = 0;
		if (client_shard_due(&cx->shard[i], &ignored))
			client_shard_run(&cx->shard[i]);
	}
}

int client_ctx_watch(struct client_ctx *cx, int fd)
{
	struct epoll_event ev = {
		.events = EPOLLIN,
		.data.u64 = (uint64_t)CLIENT_WATCHED << 32 | (uint32_t)fd};

	if (epoll_ctl(cx->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		log_error("epoll_ctl: cannot watch descriptor %d: %m", fd);
		return -1;
	}
	return 0;
}

int client_ctx_watched_ready(const struct client_ctx *cx)
{
	return cx->watched_ready;
}

/* NULL for a NULL conn: libstrophe 0.12's certificate callback gets a
 * certificate whose connection it never filled in. */
static struct client *client_by_conn(const xmpp_conn_t *conn)
{
	struct client_ctx *cx = conn ? client_the_ctx : NULL;
	xmpp_ctx_t *ctx = conn ? xmpp_conn_get_context((xmpp_conn_t *)conn) : NULL;

	for (size_t i = 0; cx && i < CLIENT_SHARDS; i++)
		if (cx->shard[i].ctx == ctx)
			for (struct client *c = cx->shard[i].clients; c;
			     c = c->shard_next)
				if (c->conn == conn)
					return c;
	return NULL;
}

static int client_certfail(const xmpp_tlscert_t *cert, const char *errormsg)
{
	struct client *c = client_by_conn(xmpp_tlscert_get_conn(cert));

	log_warn("TLS certificate of %s rejected: %s",
		 c ? xmpp_conn_get_jid(c->conn) : "?", errormsg);
	if (c)
		c->certfail = 1;
	return 0; /* never accept an unverified certificate */
}

static int client_sockopt(xmpp_conn_t *conn, void *sock)
{
	int fd = *(int *)sock;

	if (fd >= CLIENT_FD_LIMIT) {
		struct client *c = client_by_conn(conn);
		log_error("socket %d is too close to FD_SETSIZE: refused", fd);
		if (c)
			c->limit = 1;
		return -1;
	}
	struct client *c = client_by_conn(conn);
	/* Out: the connect finishing; then in only (client_collect). */
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT};
	if (c && c->cx->epfd != -1) {
		ev.data.u64 = ((uint64_t)(c->shard - c->cx->shard) << 32) |
			      (uint32_t)fd;
		if (epoll_ctl(c->cx->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			log_error("epoll_ctl on socket %d: %m", fd);
			c->limit = 1;
			return -1;
		}
	}
	return xmpp_sockopt_cb_keepalive(conn, sock);
}

xmpp_stanza_t *client_add_child(xmpp_ctx_t *ctx, xmpp_stanza_t *parent,
				       const char *name, const char *ns,
				       const char *text)
{
	xmpp_stanza_t *el = xmpp_stanza_new(ctx);
	xmpp_stanza_t *added = NULL;

	if (!el)
		return NULL;
	if (xmpp_stanza_set_name(el, name) != XMPP_EOK ||
	    (ns && xmpp_stanza_set_ns(el, ns) != XMPP_EOK))
		goto out;
	if (text) {
		xmpp_stanza_t *t = xmpp_stanza_new(ctx);
		if (!t || xmpp_stanza_set_text(t, text) != XMPP_EOK) {
			xmpp_stanza_release(t);
			goto out;
		}
		xmpp_stanza_add_child_ex(el, t, 0);
	}
	if (xmpp_stanza_add_child(parent, el) == XMPP_EOK)
		added = el; /* parent holds a reference now */
out:
	xmpp_stanza_release(el);
	return added;
}

/* Asks for a contact's presence if we may see it (RFC 6121 4.3: what
 * initial presence makes the server do). */
static void client_probe(struct client *c, const char *jid, const char *sub)
{
	xmpp_stanza_t *p;

	if (!sub || (strcmp(sub, "to") != 0 && strcmp(sub, "both") != 0) ||
	    !(p = xmpp_presence_new(c->ctx)))
		return;
	if (xmpp_stanza_set_type(p, "probe") == XMPP_EOK &&
	    xmpp_stanza_set_to(p, jid) == XMPP_EOK)
		client_send(c, p);
	xmpp_stanza_release(p);
}

/* A roster result or push; with probe, each contact is also asked for
 * its presence. */
static void client_roster_items(struct client *c, xmpp_stanza_t *query,
				int probe)
{
	for (xmpp_stanza_t *it = xmpp_stanza_get_children(query); it;
	     it = xmpp_stanza_get_next(it)) {
		const char *name = xmpp_stanza_get_name(it);
		const char *jid = xmpp_stanza_get_attribute(it, "jid");
		const char *sub = xmpp_stanza_get_attribute(it, "subscription");
		const char *groups[CLIENT_GROUPS_MAX];
		char *texts[CLIENT_GROUPS_MAX];
		size_t n = 0;

		if (!name || strcmp(name, "item") != 0 || !jid)
			continue;
		if (sub && strcmp(sub, "remove") == 0) {
			c->ev->roster_remove(c->ud, jid);
			continue;
		}
		for (xmpp_stanza_t *g = xmpp_stanza_get_child_by_name(it, "group");
		     g && n < CLIENT_GROUPS_MAX; g = xmpp_stanza_get_next(g)) {
			const char *gn = xmpp_stanza_get_name(g);
			if (!gn || strcmp(gn, "group") != 0)
				continue;
			texts[n] = xmpp_stanza_get_text(g);
			if (texts[n]) {
				groups[n] = texts[n];
				n++;
			}
		}
		c->ev->roster_item(c->ud, jid,
				   xmpp_stanza_get_attribute(it, "name"), sub,
				   groups, n);
		if (probe)
			client_probe(c, jid, sub);
		for (size_t i = 0; i < n; i++)
			xmpp_free(c->ctx, texts[i]);
	}
}

static int client_send_initial_presence(struct client *c)
{
	xmpp_stanza_t *p = xmpp_presence_new(c->ctx);

	if (!p)
		return -1;
	client_send(c, p);
	xmpp_stanza_release(p);
	return 0;
}

static void client_discover_server(struct client *c);

/*
 * A token login's stream runs our handlers from its first stanza (raw
 * mode counts as authenticated at once): until it is bound, anything
 * arriving is the negotiation's, or an attacker's before STARTTLS, never
 * a contact's message or presence.
 */
static int client_negotiating(const struct client *c)
{
	return c->step != CLIENT_RAW_DONE;
}

/* The full JID the server bound. */
static const char *client_bound(struct client *c)
{
	return c->bound;
}

static int client_on_roster_result(xmpp_conn_t *conn, xmpp_stanza_t *st,
				   void *ud)
{
	struct client *c = ud;
	const char *type = xmpp_stanza_get_type(st);
	xmpp_stanza_t *q = xmpp_stanza_get_child_by_ns(st, XMPP_NS_ROSTER);

	(void)conn;
	/* A resumed stream still has its presence at the server, which
	 * therefore asks contacts for theirs no more: we ask. */
	if (type && strcmp(type, "result") == 0 && q)
		client_roster_items(c, q, c->resumed);
	else
		log_warn("roster request of %s failed", xmpp_conn_get_jid(c->conn));
	/* Presence after the roster, so contacts' answers find their entry. */
	if (!c->resumed)
		client_send_initial_presence(c);
	c->resumed = 0;
	client_discover_server(c);
	c->online = 1;
	c->ev->online(c->ud, client_bound(c));
	return 0;
}

static int client_on_server_info(xmpp_conn_t *conn, xmpp_stanza_t *st,
				 void *ud)
{
	struct client *c = ud;
	xmpp_stanza_t *q = xmpp_stanza_get_child_by_ns(st, CLIENT_NS_DISCO_INFO);

	(void)conn;
	for (xmpp_stanza_t *f = q ? xmpp_stanza_get_children(q) : NULL; f;
	     f = xmpp_stanza_get_next(f)) {
		const char *var = xmpp_stanza_get_attribute(f, "var");
		if (var && strcmp(var, CLIENT_NS_NOSAVE) == 0)
			c->nosave = 1;
	}
	return 0;
}

/* What the server offers that changes what we send (google:nosave). */
static void client_discover_server(struct client *c)
{
	char id[WIRE_ID_HEX + 1];
	char *domain = xmpp_jid_domain(c->ctx, xmpp_conn_get_jid(c->conn));
	xmpp_stanza_t *iq = NULL;

	seal_random_id(id);
	if (domain)
		iq = xmpp_iq_new(c->ctx, "get", id);
	if (iq && xmpp_stanza_set_to(iq, domain) == XMPP_EOK &&
	    client_add_child(c->ctx, iq, "query", CLIENT_NS_DISCO_INFO,
			     NULL)) {
		xmpp_id_handler_add(c->conn, client_on_server_info, id, c);
		client_send(c, iq);
	}
	if (iq)
		xmpp_stanza_release(iq);
	xmpp_free(c->ctx, domain);
}

static void client_request_roster(struct client *c)
{
	char id[WIRE_ID_HEX + 1];
	xmpp_stanza_t *iq;

	seal_random_id(id);
	iq = xmpp_iq_new(c->ctx, "get", id);
	if (!iq ||
	    !client_add_child(c->ctx, iq, "query", XMPP_NS_ROSTER, NULL)) {
		xmpp_stanza_release(iq);
		client_close_stream(c);
		return;
	}
	xmpp_id_handler_add(c->conn, client_on_roster_result, id, c);
	client_send(c, iq);
	xmpp_stanza_release(iq);
}

/* Roster pushes are only trusted from our own account (RFC 6121 2.1.6). */
static int client_on_roster_push(xmpp_conn_t *conn, xmpp_stanza_t *st,
				 void *ud)
{
	struct client *c = ud;
	const char *from = xmpp_stanza_get_from(st);
	const char *type = xmpp_stanza_get_type(st);
	xmpp_stanza_t *q = xmpp_stanza_get_child_by_ns(st, XMPP_NS_ROSTER);

	(void)conn;
	const char *bound = client_bound(c);
	char *bare = from ? xmpp_jid_bare(c->ctx, from) : NULL;
	char *own = bound ? xmpp_jid_bare(c->ctx, bound) : NULL;

	/* Before binding (a token login's stream, where libstrophe runs our
	 * handlers from the start) there is no roster to change. */
	if (own && type && strcmp(type, "set") == 0 && q &&
	    (!from || (bare && strcmp(bare, own) == 0))) {
		client_roster_items(c, q, 0);
		xmpp_stanza_t *res = xmpp_iq_new(c->ctx, "result",
						 xmpp_stanza_get_id(st));
		if (res) {
			client_send(c, res);
			xmpp_stanza_release(res);
		}
	}
	xmpp_free(c->ctx, bare);
	xmpp_free(c->ctx, own);
	return 1;
}

/* The text of child name, in *owned for the caller to xmpp_free(). */
static const char *client_child_text(xmpp_stanza_t *st, const char *name,
				     char **owned)
{
	xmpp_stanza_t *el = xmpp_stanza_get_child_by_name(st, name);

	*owned = el ? xmpp_stanza_get_text(el) : NULL;
	return *owned;
}

/* Subscription presence (RFC 6121 3); errors and probes are dropped. */
static void client_on_subscription(struct client *c, xmpp_stanza_t *st,
				   const char *from, const char *type)
{
	static const char *const types[] = {"subscribe", "subscribed",
					    "unsubscribe", "unsubscribed"};
	char bare[JID_MAX + 1];
	char *status = NULL;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(type, types[i]) != 0 ||
		    jid_bare(from, bare, sizeof(bare)) == -1)
			continue;
		c->ev->subscription(c->ud, bare, types[i],
				    client_child_text(st, "status", &status));
		xmpp_free(c->ctx, status);
		return;
	}
}

static int client_on_presence(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct client *c = ud;
	const char *from = xmpp_stanza_get_from(st);
	const char *type = xmpp_stanza_get_type(st);

	if (client_negotiating(c))
		return 1;
	xmpp_stanza_t *caps = xmpp_stanza_get_child_by_ns(st, CLIENT_NS_CAPS);
	char capsbuf[512];
	char *show = NULL, *status = NULL;

	(void)conn;
	if (!from)
		return 1;
	if (type && strcmp(type, "unavailable") == 0) {
		c->ev->presence(c->ud, from, NULL);
		return 1;
	}
	if (type) {
		client_on_subscription(c, st, from, type);
		return 1;
	}
	xmpp_stanza_t *update = xmpp_stanza_get_child_by_ns(st,
							    CLIENT_NS_VCARD_UPDATE);
	char *photo = NULL;
	struct roster_presence p = {
		.show = client_child_text(st, "show", &show),
		.status = client_child_text(st, "status", &status),
		.photo = update ? client_child_text(update, "photo", &photo) : NULL,
	};
	/* <photo/> with no text: the contact has no avatar. */
	if (update && !p.photo && xmpp_stanza_get_child_by_name(update, "photo"))
		p.photo = "";
	if (!p.show || !*p.show)
		p.show = "available";
	if (caps && xmpp_stanza_get_attribute(caps, "node") &&
	    xmpp_stanza_get_attribute(caps, "ver")) {
		snprintf(capsbuf, sizeof(capsbuf), "%s#%s",
			 xmpp_stanza_get_attribute(caps, "node"),
			 xmpp_stanza_get_attribute(caps, "ver"));
		p.caps = capsbuf;
	}
	c->ev->presence(c->ud, from, &p);
	xmpp_free(c->ctx, show);
	xmpp_free(c->ctx, status);
	xmpp_free(c->ctx, photo);
	return 1;
}

/* The children of a message that say more than its body. */
static void client_message_extras(xmpp_stanza_t *st, struct client_message *m)
{
	for (xmpp_stanza_t *ch = xmpp_stanza_get_children(st); ch;
	     ch = xmpp_stanza_get_next(ch)) {
		const char *ns = xmpp_stanza_get_ns(ch);
		const char *name = xmpp_stanza_get_name(ch);
		if (!ns || !name)
			continue;
		if (strcmp(ns, CLIENT_NS_CHATSTATES) == 0)
			m->state = name;
		else if (strcmp(ns, CLIENT_NS_HINTS) == 0 &&
			 (strcmp(name, "no-store") == 0 ||
			  strcmp(name, "no-permanent-store") == 0))
			m->nostore = 1;
		else if (strcmp(ns, CLIENT_NS_NOSAVE) == 0 &&
			 strcmp(name, "x") == 0)
			m->nostore = 1;
		else if (strcmp(ns, CLIENT_NS_DELAY) == 0 &&
			 strcmp(name, "delay") == 0)
			m->stamp = xmpp_stanza_get_attribute(ch, "stamp");
		else if (strcmp(ns, CLIENT_NS_RECEIPTS) == 0 &&
			 strcmp(name, "request") == 0)
			m->want_receipt = 1;
		else if (strcmp(ns, CLIENT_NS_RECEIPTS) == 0 &&
			 strcmp(name, "received") == 0)
			m->receipt = xmpp_stanza_get_attribute(ch, "id");
	}
}

static int client_on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct client *c = ud;
	const char *type = xmpp_stanza_get_type(st);
	char *body = NULL;

	(void)conn;
	if (client_negotiating(c))
		return 1;
	if (type && strcmp(type, "error") == 0)
		return 1;
	struct client_message m = {
		.from = xmpp_stanza_get_from(st),
		.id = xmpp_stanza_get_id(st),
		.type = type ? type : "normal",
		.body = client_child_text(st, "body", &body),
	};
	client_message_extras(st, &m);
	if (m.receipt && !*m.receipt)
		m.receipt = NULL;
	if (m.from && (m.body || m.state || m.receipt))
		c->ev->message(c->ud, &m);
	xmpp_free(c->ctx, body);
	return 1;
}

/* ---- the stream negotiated here (libstrophe's raw mode) ---- */
/*
 * libstrophe negotiates a stream itself only for passwords, computing
 * SCRAM's 4096 PBKDF2 rounds with its own SHA-1 (more than half of a
 * login's CPU in the daemon) and asking for a stream management ack after
 * every stanza it sends (Prosody's cost per message doubled); it speaks
 * no token mechanism. So every stream is negotiated here: STARTTLS; SASL
 * with a password (scram.c, on OpenSSL; PLAIN, under TLS, only where the
 * server offers nothing better) or a token (sasl.c); then the stream is
 * resumed (XEP-0198, smacks.c) or bound, and managed from then on.
 */

/* Ends a negotiation that cannot go on; why is for the log. */
static void client_raw_fail(struct client *c, enum client_error err,
			    const char *why)
{
	log_warn("login of %s: %s", xmpp_conn_get_jid(c->conn), why);
	if (err == CLIENT_ERR_AUTH)
		c->authfail = 1;
	else if (!c->certfail)
		c->raw_error = err;
	client_close_stream(c);
}

/* Stanzas the server has not acknowledged, again on a new stream. */
static void client_sm_resend(struct client *c)
{
	struct smacks_item *it;

	smacks_each(&c->sm, it)
		xmpp_send_raw(c->conn, it->data, it->len);
	client_sm_list(c);
	c->shard->dirty = 1;
}

/* The SASL mechanism and first message for a password: SCRAM when
 * offered, else PLAIN (the stream is under TLS by now). */
static char *client_password_first(struct client *c,
				   const char *const *offered, size_t n,
				   const char **mech)
{
	char *local = xmpp_jid_node(c->ctx, xmpp_conn_get_jid(c->conn));
	char *b64 = NULL;

	*mech = scram_pick(offered, n);
	if (!*mech && sasl_offered(SASL_PLAIN, offered, n))
		*mech = SASL_PLAIN;
	scram_free(c->scram);
	c->scram = NULL;
	c->scram_step = 0;
	if (local && *mech && strcmp(*mech, SASL_PLAIN) == 0)
		b64 = sasl_initial_response(SASL_PLAIN, local, c->secret);
	else if (local && *mech &&
		 (c->scram = scram_new(*mech, local, c->secret, NULL)))
		b64 = scram_client_first(c->scram);
	xmpp_free(c->ctx, local);
	return b64;
}

static void client_raw_auth(struct client *c, xmpp_stanza_t *mechs)
{
	const char *offered[CLIENT_MECHS_MAX];
	char *texts[CLIENT_MECHS_MAX];
	size_t n = 0;
	char bare[JID_MAX + 1];
	const char *mech;
	char *b64;

	for (xmpp_stanza_t *m = mechs ? xmpp_stanza_get_children(mechs) : NULL;
	     m && n < CLIENT_MECHS_MAX; m = xmpp_stanza_get_next(m))
		if ((texts[n] = xmpp_stanza_get_text(m)))
			offered[n] = texts[n], n++;
	if (c->token) {
		mech = sasl_pick(c->mech, offered, n);
		b64 = mech && jid_bare(xmpp_conn_get_jid(c->conn), bare,
				       sizeof(bare)) == 0
			      ? sasl_initial_response(mech, bare, c->secret)
			      : NULL;
	} else {
		b64 = client_password_first(c, offered, n, &mech);
	}
	for (size_t i = 0; i < n; i++)
		xmpp_free(c->ctx, texts[i]);
	if (!b64) {
		client_raw_fail(c, CLIENT_ERR_AUTH,
				mech    ? "out of memory"
				: c->token ? "the server offers no such token mechanism"
					   : "the server offers no password mechanism");
		return;
	}
	/* Google's X-OAUTH2 wants its service attribute; others ignore it. */
	xmpp_send_raw_string(c->conn,
			     "<auth xmlns='%s' mechanism='%s'%s>%s</auth>",
			     CLIENT_NS_SASL, mech,
			     c->token ? " xmlns:ga='http://www.google.com/talk/"
					"protocol/auth' ga:service='oauth2'"
				      : "",
			     b64);
	seal_wipe(b64, strlen(b64));
	free(b64);
}

/* SCRAM's server-first; or, from some servers, its server-final in a
 * challenge of its own before an empty success. */
static void client_raw_challenge(struct client *c, xmpp_stanza_t *st)
{
	char *text = xmpp_stanza_get_text(st);
	char *reply = NULL;

	if (c->scram && c->scram_step == 0 && text &&
	    (reply = scram_client_final(c->scram, text))) {
		c->scram_step = 1;
		xmpp_send_raw_string(c->conn, "<response xmlns='%s'>%s</response>",
				     CLIENT_NS_SASL, reply);
		seal_wipe(reply, strlen(reply));
		free(reply);
	} else if (c->scram && c->scram_step == 1 && text &&
		   scram_verify_server(c->scram, text) == 0) {
		c->scram_step = 2;
		xmpp_send_raw_string(c->conn, "<response xmlns='%s'/>",
				     CLIENT_NS_SASL);
	} else {
		client_raw_fail(c, CLIENT_ERR_AUTH, "unexpected SASL challenge");
	}
	xmpp_free(c->ctx, text);
}

/* SCRAM is mutual: the server proves it knows the password too. */
static void client_raw_success(struct client *c, xmpp_stanza_t *st)
{
	char *text = c->scram ? xmpp_stanza_get_text(st) : NULL;
	int proven = !c->scram || c->scram_step == 2 ||
		     (c->scram_step == 1 && text &&
		      scram_verify_server(c->scram, text) == 0);

	xmpp_free(c->ctx, text);
	scram_free(c->scram);
	c->scram = NULL;
	if (!proven) {
		client_raw_fail(c, CLIENT_ERR_AUTH,
				"the server did not prove it knows the password");
		return;
	}
	c->step = CLIENT_RAW_BIND;
	client_open_stream(c);
}

/* Bound, and in a session where the server wants one: stream management
 * from here on, then the roster. */
static void client_raw_ready(struct client *c)
{
	if (c->sm_offered) {
		client_sm_send(c, "enable", "resume", "true", NULL, NULL);
		smacks_enable(&c->sm);
		client_sm_resend(c);
	} else {
		smacks_off(&c->sm);
	}
	client_request_roster(c);
}

static int client_raw_session_done(xmpp_conn_t *conn, xmpp_stanza_t *st,
				   void *ud)
{
	struct client *c = ud;

	(void)conn;
	const char *type = xmpp_stanza_get_type(st);

	if (type && strcmp(type, "result") == 0)
		client_raw_ready(c);
	else
		client_raw_fail(c, CLIENT_ERR_STREAM, "session refused");
	return 0;
}

/* Sends iq set with one empty child, or with <resource> for bind. */
static void client_raw_iq(struct client *c, const char *name, const char *ns,
			  const char *resource, xmpp_handler handler)
{
	char id[WIRE_ID_HEX + 1];
	xmpp_stanza_t *iq;
	xmpp_stanza_t *ch;

	seal_random_id(id);
	iq = xmpp_iq_new(c->ctx, "set", id);
	ch = iq ? client_add_child(c->ctx, iq, name, ns, NULL) : NULL;
	if (!ch || (resource && !client_add_child(c->ctx, ch, "resource",
						  NULL, resource))) {
		xmpp_stanza_release(iq);
		client_raw_fail(c, CLIENT_ERR_LIMIT, "out of memory");
		return;
	}
	xmpp_id_handler_add(c->conn, handler, id, c);
	client_send(c, iq);
	xmpp_stanza_release(iq);
}

/* The server must bind the account we asked for: some servers let a
 * token of one account log in as another. */
static int client_raw_bound(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct client *c = ud;
	xmpp_stanza_t *b = xmpp_stanza_get_child_by_ns(st, CLIENT_NS_BIND);
	xmpp_stanza_t *j = b ? xmpp_stanza_get_child_by_name(b, "jid") : NULL;
	char *jid = j ? xmpp_stanza_get_text(j) : NULL;
	char want[JID_MAX + 1], got[JID_MAX + 1];

	(void)conn;
	if (!jid || jid_bare(jid, got, sizeof(got)) == -1 ||
	    jid_bare(xmpp_conn_get_jid(c->conn), want, sizeof(want)) == -1 ||
	    strcasecmp(got, want) != 0) {
		client_raw_fail(c, CLIENT_ERR_AUTH,
				jid ? "the server bound another account"
				    : "resource binding failed");
		xmpp_free(c->ctx, jid);
		return 0;
	}
	free(c->bound);
	c->bound = strdup(jid);
	xmpp_free(c->ctx, jid);
	c->step = CLIENT_RAW_DONE;
	if (c->need_session)
		client_raw_iq(c, "session", CLIENT_NS_SESSION, NULL,
			      client_raw_session_done);
	else
		client_raw_ready(c);
	return 0;
}

static void client_raw_send_bind(struct client *c)
{
	char *res = xmpp_jid_resource(c->ctx, xmpp_conn_get_jid(c->conn));

	c->step = CLIENT_RAW_BIND;
	client_raw_iq(c, "bind", CLIENT_NS_BIND, res, client_raw_bound);
	xmpp_free(c->ctx, res);
}

/* After SASL: resume the stream we had (XEP-0198 5) or bind a new one. */
static void client_raw_bind(struct client *c, xmpp_stanza_t *features)
{
	xmpp_stanza_t *sess =
		xmpp_stanza_get_child_by_ns(features, CLIENT_NS_SESSION);
	char h[16];

	if (!xmpp_stanza_get_child_by_ns(features, CLIENT_NS_BIND)) {
		client_raw_fail(c, CLIENT_ERR_STREAM, "no resource binding");
		return;
	}
	/* RFC 6121 dropped sessions; old servers still require one. */
	c->need_session =
		sess && !xmpp_stanza_get_child_by_name(sess, "optional");
	c->sm_offered = xmpp_stanza_get_child_by_ns(features, SMACKS_NS) != NULL;
	if (c->sm_offered && c->sm.id) {
		c->step = CLIENT_RAW_RESUME;
		snprintf(h, sizeof(h), "%u", (unsigned)c->sm.in);
		client_sm_send(c, "resume", "previd", c->sm.id, "h", h);
		return;
	}
	smacks_forget(&c->sm);
	client_raw_send_bind(c);
}

static int client_raw_features(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct client *c = ud;

	(void)conn;
	switch (c->step) {
	case CLIENT_RAW_TLS:
		if (!xmpp_stanza_get_child_by_ns(st, CLIENT_NS_TLS))
			client_raw_fail(c, CLIENT_ERR_TLS,
					"the server does not offer TLS");
		else
			xmpp_send_raw_string(c->conn, "<starttls xmlns='%s'/>",
					     CLIENT_NS_TLS);
		break;
	case CLIENT_RAW_AUTH:
		client_raw_auth(c, xmpp_stanza_get_child_by_ns(st, CLIENT_NS_SASL));
		break;
	case CLIENT_RAW_BIND:
		client_raw_bind(c, st);
		break;
	case CLIENT_RAW_RESUME:
	case CLIENT_RAW_DONE:
		break;
	}
	return 1;
}

/* <proceed/> to STARTTLS: the handshake, then a new stream over it. */
static int client_raw_proceed(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct client *c = ud;

	(void)st;
	if (c->step != CLIENT_RAW_TLS)
		return 1;
	if (xmpp_conn_tls_start(conn) != XMPP_EOK) {
		client_raw_fail(c, CLIENT_ERR_TLS, "TLS handshake failed");
		return 1;
	}
	c->step = CLIENT_RAW_AUTH;
	client_open_stream(c);
	return 1;
}

static int client_raw_sasl(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct client *c = ud;
	const char *name = xmpp_stanza_get_name(st);

	(void)conn;
	if (c->step != CLIENT_RAW_AUTH || !name)
		return 1;
	if (strcmp(name, "challenge") == 0)
		client_raw_challenge(c, st);
	else if (strcmp(name, "success") == 0)
		client_raw_success(c, st);
	else if (strcmp(name, "failure") == 0)
		client_raw_fail(c, CLIENT_ERR_AUTH,
				c->token ? "the server refused the token"
					 : "the server refused the password");
	return 1;
}

static int client_raw_stream_error(xmpp_conn_t *conn, xmpp_stanza_t *st,
				   void *ud)
{
	struct client *c = ud;

	(void)conn;
	client_raw_fail(c,
			xmpp_stanza_get_child_by_name(st, "conflict")
				? CLIENT_ERR_CONFLICT
			: xmpp_stanza_get_child_by_name(st, "not-authorized")
				? CLIENT_ERR_AUTH
				: CLIENT_ERR_STREAM,
			"stream error");
	return 1;
}

/* <resumed/>: the server kept our session; what it missed goes again. */
static void client_raw_resumed(struct client *c, xmpp_stanza_t *st)
{
	uint32_t h;

	if (smacks_parse_h(xmpp_stanza_get_attribute(st, "h"), &h) == -1 ||
	    smacks_resumed(&c->sm, h) == -1 || !c->sm.bound) {
		smacks_off(&c->sm);
		client_raw_fail(c, CLIENT_ERR_STREAM, "resumption miscounted");
		return;
	}
	free(c->bound);
	if (!(c->bound = strdup(c->sm.bound))) {
		client_raw_fail(c, CLIENT_ERR_LIMIT, "out of memory");
		return;
	}
	c->step = CLIENT_RAW_DONE;
	c->resumed = 1;
	log_info("stream of %s resumed", c->bound);
	client_sm_resend(c);
	client_request_roster(c);
}

/* <failed/> to <resume/> (the server forgot the stream: a new one, on
 * which what it had not acknowledged goes again) or to <enable/>. */
static void client_raw_sm_failed(struct client *c, xmpp_stanza_t *st)
{
	uint32_t h;

	if (c->step != CLIENT_RAW_RESUME) {
		smacks_off(&c->sm);
		return;
	}
	/* XEP-0198 1.6: the count it had, so as not to send those again. */
	if (smacks_parse_h(xmpp_stanza_get_attribute(st, "h"), &h) == 0)
		smacks_had(&c->sm, h);
	smacks_forget(&c->sm);
	client_raw_send_bind(c);
}

/* Everything in XEP-0198's namespace, once the stream is authenticated. */
static int client_on_sm(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct client *c = ud;
	const char *name = xmpp_stanza_get_name(st);
	uint32_t h;

	(void)conn;
	if (!name || c->step < CLIENT_RAW_BIND)
		return 1;
	if (strcmp(name, "r") == 0) {
		smacks_asked(&c->sm);
	} else if (strcmp(name, "a") == 0) {
		if (smacks_parse_h(xmpp_stanza_get_attribute(st, "h"), &h) == -1 ||
		    smacks_acked(&c->sm, h) == -1) {
			client_raw_fail(c, CLIENT_ERR_STREAM,
					"the server acknowledged what was never sent");
			return 1;
		}
	} else if (strcmp(name, "enabled") == 0) {
		const char *resume = xmpp_stanza_get_attribute(st, "resume");
		int can = resume && (strcmp(resume, "true") == 0 ||
				     strcmp(resume, "1") == 0);
		smacks_enabled(&c->sm, can ? xmpp_stanza_get_id(st) : NULL,
			       client_bound(c));
		client_resumable(c);
	} else if (strcmp(name, "resumed") == 0 && c->step == CLIENT_RAW_RESUME) {
		client_raw_resumed(c, st);
	} else if (strcmp(name, "failed") == 0) {
		client_raw_sm_failed(c, st);
	}
	client_sm_list(c);
	return 1;
}

/* XEP-0198 counts the server's stanzas we handled: message, presence and
 * iq of the client namespace, not its own elements nor SASL's. */
static int client_count_in(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct client *c = ud;
	const char *name = xmpp_stanza_get_name(st);
	const char *ns = xmpp_stanza_get_ns(st);

	(void)conn;
	if (name && (!ns || strcmp(ns, XMPP_NS_CLIENT) == 0) &&
	    (strcmp(name, "message") == 0 || strcmp(name, "presence") == 0 ||
	     strcmp(name, "iq") == 0))
		smacks_received(&c->sm);
	return 1;
}

static void client_raw_handlers(struct client *c)
{
	xmpp_handler_add(c->conn, client_raw_features, XMPP_NS_STREAMS,
			 "features", NULL, c);
	xmpp_handler_add(c->conn, client_raw_stream_error, XMPP_NS_STREAMS,
			 "error", NULL, c);
	xmpp_handler_add(c->conn, client_raw_proceed, CLIENT_NS_TLS, "proceed",
			 NULL, c);
	xmpp_handler_add(c->conn, client_raw_sasl, CLIENT_NS_SASL, NULL, NULL,
			 c);
	xmpp_handler_add(c->conn, client_on_sm, SMACKS_NS, NULL, NULL, c);
	xmpp_handler_add(c->conn, client_count_in, NULL, NULL, NULL, c);
}

static enum client_error client_classify(struct client *c,
					 xmpp_stream_error_t *se)
{
	if (c->limit)
		return CLIENT_ERR_LIMIT;
	if (c->certfail)
		return CLIENT_ERR_TLS;
	if (c->authfail)
		return CLIENT_ERR_AUTH;
	if (c->raw_error)
		return c->raw_error;
	if (se && se->type == XMPP_SE_NOT_AUTHORIZED)
		return CLIENT_ERR_AUTH;
	if (se && se->type == XMPP_SE_CONFLICT)
		return CLIENT_ERR_CONFLICT;
	if (se)
		return CLIENT_ERR_STREAM;
	/* A socket error, or a clean close: a refused secret set authfail
	 * where the negotiation saw it, so this is the server going away,
	 * at login time too. */
	return CLIENT_ERR_NETWORK;
}

static void client_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t event,
			   int error, xmpp_stream_error_t *se, void *ud)
{
	struct client *c = ud;

	(void)conn;
	(void)error; /* a socket error and a clean close end alike */
	if (!c->ev) /* being freed */
		return;
	if (event == XMPP_CONN_RAW_CONNECT) {
		c->step = CLIENT_RAW_TLS;
		client_open_stream(c);
		return;
	}
	/* In raw mode each stream (re)opening says CONNECT: features lead. */
	if (event == XMPP_CONN_CONNECT)
		return;
	if (event != XMPP_CONN_DISCONNECT && event != XMPP_CONN_FAIL)
		return;
	enum client_error err = client_classify(c, se);
	int was_online = c->online;
	c->online = 0;
	c->certfail = c->limit = c->authfail = c->dropping = 0;
	c->raw_error = CLIENT_OK;
	free(c->bound);
	c->bound = NULL;
	scram_free(c->scram);
	c->scram = NULL;
	smacks_lost(&c->sm);
	client_sm_unlist(c);
	c->ev->offline(c->ud, err, was_online);
}

/* The password, or the token and its mechanism (token_mech NULL: a
 * password; empty: the server's offer decides). */
static int client_use_secret(struct client *c, const char *secret,
			     const char *token_mech)
{
	if (!(c->secret = strdup(secret)))
		return -1;
	c->token = token_mech != NULL;
	if (token_mech && *token_mech)
		c->mech = strcmp(token_mech, SASL_XOAUTH2) == 0
				  ? SASL_XOAUTH2
				  : SASL_OAUTHBEARER;
	client_raw_handlers(c);
	return 0;
}

struct client *client_new(struct client_ctx *cx, const char *jid,
			  const char *secret, const char *resource,
			  const char *token_mech,
			  const struct client_events *ev, void *ud)
{
	struct client *c = calloc(1, sizeof(*c));
	char full[JID_MAX + 1];
	struct client_shard *sh = &cx->shard[0];

	for (size_t i = 1; i < CLIENT_SHARDS; i++)
		if (cx->shard[i].nclients < sh->nclients)
			sh = &cx->shard[i];
	if (!c || !(c->conn = xmpp_conn_new(sh->ctx))) {
		free(c);
		return NULL;
	}
	c->cx = cx;
	c->shard = sh;
	c->ctx = sh->ctx;
	c->ev = ev;
	c->ud = ud;
	snprintf(full, sizeof(full), "%s/%s", jid, resource);
	xmpp_conn_set_jid(c->conn, full);
	if (client_use_secret(c, secret, token_mech) == -1) {
		xmpp_conn_release(c->conn);
		free(c);
		return NULL;
	}
	if (cx->cfg->xmpp_cafile[0])
		xmpp_conn_set_cafile(c->conn, cx->cfg->xmpp_cafile);
	if (cx->cfg->xmpp_capath[0])
		xmpp_conn_set_capath(c->conn, cx->cfg->xmpp_capath);
	xmpp_conn_set_certfail_handler(c->conn, client_certfail);
	xmpp_conn_set_sockopt_callback(c->conn, client_sockopt);
	/* User handlers stay across reconnects and only fire once authed. */
	xmpp_handler_add(c->conn, client_on_message, NULL, "message", NULL, c);
	xmpp_handler_add(c->conn, client_on_presence, NULL, "presence", NULL, c);
	xmpp_handler_add(c->conn, client_on_roster_push, XMPP_NS_ROSTER, "iq",
			 "set", c);
	c->shard_next = sh->clients;
	if (sh->clients)
		sh->clients->shard_prev = c;
	sh->clients = c;
	sh->nclients++;
	return c;
}

int client_connect(struct client *c)
{
	const struct config *cfg = c->cx->cfg;
	const char *host = cfg->xmpp_connect_host[0] ? cfg->xmpp_connect_host
						      : NULL;

	if (xmpp_connect_raw(c->conn, host, (unsigned short)cfg->xmpp_connect_port,
		    client_on_conn, c) != XMPP_EOK) {
		log_error("cannot start connecting %s", xmpp_conn_get_jid(c->conn));
		return -1;
	}
	c->resumed = 0;
	c->shard->dirty = 1;
	return 0;
}

void client_disconnect(struct client *c)
{
	if (c->online) {
		xmpp_stanza_t *p = xmpp_presence_new(c->ctx);
		if (p && xmpp_stanza_set_type(p, "unavailable") == XMPP_EOK)
			client_send(c, p);
		xmpp_stanza_release(p);
	}
	if (!xmpp_conn_is_disconnected(c->conn))
		client_close_stream(c);
}

void client_free(struct client *c)
{
	if (!c)
		return;
	if (c->shard_prev)
		c->shard_prev->shard_next = c->shard_next;
	else
		c->shard->clients = c->shard_next;
	if (c->shard_next)
		c->shard_next->shard_prev = c->shard_prev;
	c->shard->nclients--;
	/* Releasing a live connection fires its handler: silence it first. */
	c->ev = NULL;
	xmpp_conn_release(c->conn);
	seal_wipe(c->secret, strlen(c->secret));
	free(c->secret);
	scram_free(c->scram);
	client_sm_unlist(c);
	smacks_clear(&c->sm);
	free(c->bound);
	free(c);
}

int client_is_online(const struct client *c)
{
	return c->online;
}

void client_resumption(const struct client *c, const char **id,
		       const char **bound, uint32_t *in)
{
	*id = c->sm.id;
	*bound = c->sm.bound;
	*in = c->sm.in;
}

int client_adopt_stream(struct client *c, const char *id, const char *bound,
			uint32_t in)
{
	return smacks_adopt(&c->sm, id, bound, in);
}

int client_settled(const struct client *c)
{
	return c->sm.queued == 0 && xmpp_conn_send_queue_len(c->conn) == 0;
}

/* The hints that ask servers and archives not to keep a message. */
static int client_add_nostore(struct client *c, xmpp_stanza_t *m)
{
	xmpp_ctx_t *ctx = c->ctx;
	xmpp_stanza_t *x;

	if (!client_add_child(ctx, m, "no-store", CLIENT_NS_HINTS, NULL) ||
	    !client_add_child(ctx, m, "no-permanent-store", CLIENT_NS_HINTS,
			      NULL))
		return -1;
	if (!c->nosave)
		return 0;
	x = client_add_child(ctx, m, "x", CLIENT_NS_NOSAVE, NULL);
	return x && xmpp_stanza_set_attribute(x, "value", "enabled") == XMPP_EOK
		       ? 0
		       : -1;
}

int client_send_message(struct client *c, const char *to, const char *id,
			const char *body, const char *state, int nostore)
{
	xmpp_ctx_t *ctx = c->ctx;
	xmpp_stanza_t *m;
	int r = -1;

	if (!c->online || !(m = xmpp_message_new(ctx, "chat", to, id)))
		return -1;
	if (body && (xmpp_message_set_body(m, body) != XMPP_EOK ||
		     !client_add_child(ctx, m, "request", CLIENT_NS_RECEIPTS,
				       NULL)))
		goto out;
	if (state && !client_add_child(ctx, m, state, CLIENT_NS_CHATSTATES, NULL))
		goto out;
	if (nostore && client_add_nostore(c, m) == -1)
		goto out;
	r = client_send(c, m);
out:
	xmpp_stanza_release(m);
	return r;
}

int client_send_presence(struct client *c, const char *show,
			 const char *status)
{
	xmpp_ctx_t *ctx = c->ctx;
	xmpp_stanza_t *p;
	int r = -1;
	/* "invisible": contacts see us go offline; the session stays. */
	int gone = strcmp(show, "unavailable") == 0 ||
		   strcmp(show, "invisible") == 0;
	int plain = strcmp(show, "available") == 0;

	if (!c->online || !(p = xmpp_presence_new(ctx)))
		return -1;
	if (gone && xmpp_stanza_set_type(p, "unavailable") != XMPP_EOK)
		goto out;
	if (!gone && !plain &&
	    !client_add_child(ctx, p, "show", NULL, show))
		goto out;
	if (status && *status &&
	    !client_add_child(ctx, p, "status", NULL, status))
		goto out;
	r = client_send(c, p);
out:
	xmpp_stanza_release(p);
	return r;
}

int client_send_receipt(struct client *c, const char *to, const char *id)
{
	xmpp_ctx_t *ctx = c->ctx;
	xmpp_stanza_t *m, *r;
	char mid[WIRE_ID_HEX + 1];
	int ok = 0;

	seal_random_id(mid);
	if (!c->online || !(m = xmpp_message_new(ctx, NULL, to, mid)))
		return -1;
	r = client_add_child(ctx, m, "received", CLIENT_NS_RECEIPTS, NULL);
	if (r && xmpp_stanza_set_attribute(r, "id", id) == XMPP_EOK) {
		ok = client_send(c, m) == 0;
	}
	xmpp_stanza_release(m);
	return ok ? 0 : -1;
}

int client_send_subscription(struct client *c, const char *to,
			     const char *type)
{
	xmpp_stanza_t *p;
	int ok = 0;

	if (!c->online || !(p = xmpp_presence_new(c->ctx)))
		return -1;
	if (xmpp_stanza_set_type(p, type) == XMPP_EOK &&
	    xmpp_stanza_set_to(p, to) == XMPP_EOK) {
		ok = client_send(c, p) == 0;
	}
	xmpp_stanza_release(p);
	return ok ? 0 : -1;
}

static int client_on_iq_reply(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	struct client *c = ud;
	const char *type = xmpp_stanza_get_type(st);
	const char *name = xmpp_stanza_get_name(st);
	char *text = NULL;
	size_t len = 0;

	(void)conn;
	/* Only the answer counts: another stanza reusing the id is not it. */
	if (!name || strcmp(name, "iq") != 0 || !type ||
	    (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
		return 1;
	if (xmpp_stanza_to_text(st, &text, &len) == XMPP_EOK) {
		c->ev->iq_reply(c->ud, xmpp_stanza_get_id(st), text);
		xmpp_free(c->ctx, text);
	}
	return 0;
}

/* Returns NULL when st may be sent as a client's iq, else why not. */
static const char *client_iq_refusal(xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st);
	const char *type = xmpp_stanza_get_type(st);
	const char *id = xmpp_stanza_get_id(st);

	if (!name || strcmp(name, "iq") != 0)
		return "not an iq";
	if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
		return "type must be get or set";
	if (id && (!*id || strlen(id) > CLIENT_IQ_ID_MAX))
		return "id is empty or too long";
	if (xmpp_stanza_get_children(st) == NULL)
		return "an iq get or set needs one child";
	return NULL;
}

int client_send_iq(struct client *c, const char *xml, int want_reply,
		   char id[CLIENT_IQ_ID_MAX + 1], const char **why)
{
	xmpp_stanza_t *st;

	if (!c->online)
		return -1;
	if (!(st = xmpp_stanza_new_from_string(c->ctx, xml))) {
		*why = "not well-formed";
		return -2;
	}
	if ((*why = client_iq_refusal(st))) {
		xmpp_stanza_release(st);
		return -2;
	}
	/* The server stamps our full JID; a client's own from is dropped. */
	xmpp_stanza_del_attribute(st, "from");
	if (xmpp_stanza_get_id(st)) {
		snprintf(id, CLIENT_IQ_ID_MAX + 1, "%s", xmpp_stanza_get_id(st));
	} else {
		seal_random_id(id);
		xmpp_stanza_set_id(st, id);
	}
	if (want_reply)
		xmpp_id_handler_add(c->conn, client_on_iq_reply, id, c);
	int r = client_send(c, st);
	xmpp_stanza_release(st);
	return r;
}

void client_forget_iq(struct client *c, const char *id)
{
	/* Whichever kind of handler waits under id. */
	xmpp_id_handler_delete(c->conn, client_on_iq_reply, id);
	for (size_t i = 0; i < c->nquery_handlers; i++)
		xmpp_id_handler_delete(c->conn, c->query_handlers[i], id);
}

xmpp_ctx_t *client_strophe_ctx(struct client *c)
{
	return c->ctx;
}

const char *client_jid(const struct client *c)
{
	return xmpp_conn_get_jid(c->conn);
}

/* Remembers handler so client_forget_iq() can find it. */
static void client_note_handler(struct client *c, client_iq_handler handler)
{
	for (size_t i = 0; i < c->nquery_handlers; i++)
		if (c->query_handlers[i] == handler)
			return;
	if (c->nquery_handlers < CLIENT_QUERY_KINDS)
		c->query_handlers[c->nquery_handlers++] = handler;
}

int client_send_query(struct client *c, xmpp_stanza_t *iq, const char *id,
		      client_iq_handler handler)
{
	if (!c->online || xmpp_stanza_set_id(iq, id) != XMPP_EOK)
		return -1;
	client_note_handler(c, handler);
	xmpp_id_handler_add(c->conn, handler, id, c);
	return client_send(c, iq);
}

void client_deliver_query(struct client *c, const char *id,
			  const struct query_result *r)
{
	if (c->ev)
		c->ev->query(c->ud, id, r);
}

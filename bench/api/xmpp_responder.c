/*
 * xmpp_responder.c: the other end of baseline (c) of figure 1
 * (bench/api/run.py): bench-responder's job plus what /v1/message must do
 * at the far end, send the message over XMPP. It holds one libstrophe
 * connection (the daemon's library, with its defaults: stream management
 * when the server offers it) and, for every request id published on the
 * channel, queues one chat message to the recipient, pushes the reply
 * (LPUSH and EXPIRE, pipelined) and lets libstrophe write. One thread:
 * poll() on the subscription socket, then xmpp_run_once(ctx, 0).
 *
 *   bench-xmpp-responder -p REDIS_PORT -x XMPP_PORT -j JID -w PASSWORD
 *       -a CAFILE -t RECIPIENT [-h 127.0.0.1] [-C channel]
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <time.h>
#include <unistd.h>

#include "benchbus.h"

#define BATCH 256

static volatile sig_atomic_t stop;
static int online, failed;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
		    xmpp_stream_error_t *stream_error, void *userdata)
{
	xmpp_ctx_t *ctx = userdata;

	(void)error;
	(void)stream_error;
	if (status == XMPP_CONN_CONNECT) {
		xmpp_stanza_t *pres = xmpp_presence_new(ctx);
		xmpp_send(conn, pres);
		xmpp_stanza_release(pres);
		online = 1;
	} else {
		online = 0;
		failed = 1;
	}
}

struct sender {
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	const char *to;
};

/* What (c) adds to (b): one chat message per request, queued in
 * libstrophe before the reply goes out. */
static int send_message(void *ud, const char *rid)
{
	struct sender *sd = ud;
	char id[96];

	/* The contact logs ids that start with "bench-": run.py counts them. */
	snprintf(id, sizeof(id), "bench-xc-%s", rid);
	xmpp_stanza_t *msg = xmpp_message_new(sd->ctx, "chat", sd->to, id);

	if (!msg || xmpp_message_set_body(msg, "benchmark message") != 0) {
		xmpp_stanza_release(msg);
		return -1;
	}
	xmpp_send(sd->conn, msg);
	xmpp_stanza_release(msg);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-xmpp-responder -p redis-port -x xmpp-port "
			"-j jid -w password -a cafile -t recipient [-h host] "
			"[-C channel]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_term};
	struct benchbus_where w = BENCHBUS_WHERE_DEFAULT;
	const char *jid = NULL, *pass = NULL, *cafile = NULL, *to = NULL;
	redisReply *batch[BATCH];
	int xport = 0, opt;

	while ((opt = getopt(argc, argv, BENCHBUS_OPTIONS "x:j:w:a:t:")) != -1) {
		if (benchbus_option(&w, opt, optarg))
			continue;
		switch (opt) {
		case 'x': xport = atoi(optarg); break;
		case 'j': jid = optarg; break;
		case 'w': pass = optarg; break;
		case 'a': cafile = optarg; break;
		case 't': to = optarg; break;
		default: usage();
		}
	}
	if (!w.port || !xport || !jid || !pass || !cafile || !to)
		usage();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	xmpp_initialize();
	xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
	xmpp_conn_t *conn = xmpp_conn_new(ctx);
	xmpp_conn_set_jid(conn, jid);
	xmpp_conn_set_pass(conn, pass);
	xmpp_conn_set_cafile(conn, cafile);
	xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_MANDATORY_TLS);
	if (xmpp_connect_client(conn, w.host, (unsigned short)xport, on_conn,
				ctx) != XMPP_EOK) {
		fprintf(stderr, "bench-xmpp-responder: cannot connect\n");
		return 1;
	}
	/* Bounded: at most 15 s to log in. */
	for (int i = 0; i < 1500 && !online && !failed && !stop; i++)
		xmpp_run_once(ctx, 10);
	if (!online) {
		fprintf(stderr, "bench-xmpp-responder: XMPP login failed\n");
		return 1;
	}

	redisContext *sc =
		benchbus_subscribe("bench-xmpp-responder", w.host, w.port, w.chan);
	redisContext *pc =
		benchbus_connect("bench-xmpp-responder", w.host, w.port);
	struct sender sd = {ctx, conn, to};
	while (!stop && !failed) {
		struct pollfd pfd = {.fd = sc->fd, .events = POLLIN};
		void *next = NULL;
		int n = 0;

		/* Requests first; the XMPP side is served between polls. */
		if (poll(&pfd, 1, 1) > 0 && redisBufferRead(sc) != REDIS_OK)
			break;
		while (n < BATCH &&
		       redisGetReplyFromReader(sc, &next) == REDIS_OK && next)
			batch[n++] = next, next = NULL;
		int rc = n ? benchbus_answer(pc, batch, n, send_message, &sd) : 0;
		for (int i = 0; i < n; i++)
			freeReplyObject(batch[i]);
		if (rc == -1)
			break;
		xmpp_run_once(ctx, 0);
	}
	xmpp_disconnect(conn);
	for (int i = 0; i < 100 && online; i++)
		xmpp_run_once(ctx, 10);
	xmpp_conn_release(conn);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	redisFree(sc);
	redisFree(pc);
	return 0;
}

/*
 * responder.c: the other end of baseline (b) of figure 1 (bench/api/run.py):
 * subscribes to a channel and answers every request id published there by
 * pushing a reply onto bench:reply:<id> (LPUSH and EXPIRE, pipelined, as
 * talkproxyd's bus_reply() does). Requests that arrived together are
 * answered in one pipelined batch. Runs until SIGTERM or SIGINT.
 *
 *   bench-responder -p 6379 [-h 127.0.0.1] [-C channel]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchbus.h"

#define BATCH 256

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_term};
	struct benchbus_where w = BENCHBUS_WHERE_DEFAULT;
	redisReply *batch[BATCH], *r;
	int opt;

	while ((opt = getopt(argc, argv, BENCHBUS_OPTIONS)) != -1)
		if (!benchbus_option(&w, opt, optarg))
			w.port = 0;
	if (!w.port) {
		fprintf(stderr, "usage: bench-responder -p redis-port [-h host] "
				"[-C channel]\n");
		return 2;
	}
	/* No SA_RESTART: SIGTERM ends a blocking read. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	redisContext *sc =
		benchbus_subscribe("bench-responder", w.host, w.port, w.chan);
	redisContext *pc = benchbus_connect("bench-responder", w.host, w.port);
	while (!stop) {
		int n = 0;
		void *next = NULL;

		if (redisGetReply(sc, (void **)&r) != REDIS_OK)
			break;
		batch[n++] = r;
		/* Whatever else already arrived: answer it in the same batch. */
		while (n < BATCH &&
		       redisGetReplyFromReader(sc, &next) == REDIS_OK && next)
			batch[n++] = next, next = NULL;
		int rc = benchbus_answer(pc, batch, n, NULL, NULL);
		for (int i = 0; i < n; i++)
			freeReplyObject(batch[i]);
		if (rc == -1)
			break;
	}
	redisFree(sc);
	redisFree(pc);
	return 0;
}

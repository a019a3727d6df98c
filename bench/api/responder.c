/*
 * responder.c: the other end of baseline (b) of figure 1 (bench/api/run.py):
 * subscribes to a channel and answers every request id published there by
 * pushing a reply onto bench:reply:<id> (LPUSH and EXPIRE, pipelined, as
 * talkproxyd's bus_reply() does). Requests that arrived together are
 * answered in one pipelined batch. Runs until SIGTERM or SIGINT.
 *
 *   bench-responder -p 6379 [-h 127.0.0.1] [-C channel]
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 256

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static redisContext *connect_or_die(const char *host, int port)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout(host, port, tv);

	if (!c || c->err) {
		fprintf(stderr, "bench-responder: redis %s:%d: %s\n", host, port,
			c ? c->errstr : "out of memory");
		exit(1);
	}
	return c;
}

/* The request id of a pub/sub "message" reply, or NULL. */
static const char *request_id(const redisReply *r)
{
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "message") == 0 &&
	    r->element[2]->type == REDIS_REPLY_STRING)
		return r->element[2]->str;
	return NULL;
}

/* Answers a batch: 2n pipelined commands, then their 2n replies. */
static int answer(redisContext *pc, redisReply **batch, int n)
{
	redisReply *r;
	int queued = 0;

	for (int i = 0; i < n; i++) {
		const char *rid = request_id(batch[i]);
		if (!rid)
			continue;
		redisAppendCommand(pc, "LPUSH bench:reply:%s {\"status\":200}", rid);
		redisAppendCommand(pc, "EXPIRE bench:reply:%s 60", rid);
		queued += 2;
	}
	for (int i = 0; i < queued; i++) {
		if (redisGetReply(pc, (void **)&r) != REDIS_OK)
			return -1;
		freeReplyObject(r);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_term};
	const char *host = "127.0.0.1", *chan = "bench:req";
	redisReply *batch[BATCH], *r;
	int port = 0, opt;

	while ((opt = getopt(argc, argv, "h:p:C:")) != -1) {
		if (opt == 'h')
			host = optarg;
		else if (opt == 'p')
			port = atoi(optarg);
		else if (opt == 'C')
			chan = optarg;
		else
			port = 0;
	}
	if (!port) {
		fprintf(stderr, "usage: bench-responder -p redis-port [-h host] "
				"[-C channel]\n");
		return 2;
	}
	/* No SA_RESTART: SIGTERM ends a blocking read. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	redisContext *sc = connect_or_die(host, port);
	redisContext *pc = connect_or_die(host, port);
	r = redisCommand(sc, "SUBSCRIBE %s", chan);
	if (!r) {
		fprintf(stderr, "bench-responder: SUBSCRIBE failed\n");
		return 1;
	}
	freeReplyObject(r);
	printf("subscribed %s\n", chan);
	fflush(stdout);
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
		int rc = answer(pc, batch, n);
		for (int i = 0; i < n; i++)
			freeReplyObject(batch[i]);
		if (rc == -1)
			break;
	}
	redisFree(sc);
	redisFree(pc);
	return 0;
}

/*
 * benchbus.h: the Redis side of bench/api's programs (baselines (a)-(c) of
 * figure 1): where it is, and for the two responders connecting and
 * answering a batch of requests published on the channel with pipelined
 * replies.
 */
#ifndef TALKPROXY_BENCHBUS_H
#define TALKPROXY_BENCHBUS_H

#include <hiredis/hiredis.h>

/* Where the requests go: -h host, -p port, -C channel, as each bench
 * program is told by run.py. */
struct benchbus_where {
	const char *host;
	int port; /* 0: not given */
	const char *chan;
};
#define BENCHBUS_WHERE_DEFAULT {"127.0.0.1", 0, "bench:req"}
#define BENCHBUS_OPTIONS "h:p:C:"

/* Takes getopt()'s opt and optarg: 1 when opt was one of BENCHBUS_OPTIONS,
 * 0 for the caller's own. */
int benchbus_option(struct benchbus_where *w, int opt, const char *arg);

/* Connects or exits; prog names the program in the message. */
redisContext *benchbus_connect(const char *prog, const char *host, int port);
/* A connection subscribed to chan (says "subscribed <chan>" on stdout),
 * or exits. */
redisContext *benchbus_subscribe(const char *prog, const char *host, int port,
				 const char *chan);

/*
 * For each pub/sub message in batch[0..n) calls each (when not NULL) with
 * its request id, then pushes every reply (LPUSH + EXPIRE of
 * bench:reply:<id>) in one pipeline on pc. 0, or -1 when each or Redis
 * failed.
 */
int benchbus_answer(redisContext *pc, redisReply **batch, int n,
		    int (*each)(void *ud, const char *rid), void *ud);

#endif

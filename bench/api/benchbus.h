/*
 * benchbus.h: what the two responders of bench/api (baselines (b) and (c)
 * of figure 1) share: connecting to Redis, and answering a batch of
 * requests published on the channel with pipelined replies.
 */
#ifndef TALKPROXY_BENCHBUS_H
#define TALKPROXY_BENCHBUS_H

#include <hiredis/hiredis.h>

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

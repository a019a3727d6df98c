/*
 * park.h: requests that wait for a stream to catch up. When the XMPP
 * server falls behind a session's stream (its acknowledgements lag),
 * sending more would only lengthen the queue in between, and past
 * SMACKS_QUEUE_MAX the stream would be dropped; the session's message
 * requests wait here instead, in order, and are handled again once the
 * stream has room. The caller's handler keeps waiting for its reply, so a
 * client sees a slower answer, not an error. Each item keeps the request
 * as it came from the bus and its deadline: one whose caller gave up is
 * dropped, never sent late.
 */
#ifndef TALKPROXY_PARK_H
#define TALKPROXY_PARK_H

#include <stddef.h>
#include <stdint.h>

struct park;

struct park *park_new(void);
/* Frees every item still parked. Accepts NULL. */
void park_free(struct park *p);

/* Appends a copy of msg for owner: 0, or -1 out of memory. */
int park_put(struct park *p, void *owner, int64_t deadline_ms,
	     const char *msg, size_t len);
/* The owner is gone: its items become ownerless (handed on by the next
 * park_run, whose handler finds no owner for them). */
void park_forget(struct park *p, const void *owner);
/* Whether anything is parked. */
int park_any(const struct park *p);

/*
 * Walks the items in order; an item whose owner is NULL or ready(arg,
 * owner), or whose deadline is before now, is removed and passed to
 * take(arg, owner, msg, len) (owner NULL when forgotten). Items of an
 * owner that is not ready stay, in order. take may park again.
 */
void park_run(struct park *p, int64_t now, int (*ready)(void *, void *),
	      void (*take)(void *, void *, const char *, size_t), void *arg);

#endif

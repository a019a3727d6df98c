/*
 * listener.h: the daemon's subscription to the login channel and its own
 * channel, read by the loop thread itself: the loop's one wait watches the
 * subscription's socket beside the XMPP streams', so a request costs no
 * hand-over between threads. When Redis goes away it reconnects and
 * subscribes again, with backoff, without holding up the loop.
 */
#ifndef TALKPROXY_LISTENER_H
#define TALKPROXY_LISTENER_H

#include <stddef.h>

struct client_ctx;
struct config;
struct listener;

/* Receives each request; msg is borrowed for the call. */
typedef void listener_fn(void *arg, const char *msg, size_t len);

/* cfg, cx and channel must outlive it. NULL on allocation failure; a
 * Redis that is down only delays the subscription. */
struct listener *listener_new(const struct config *cfg, struct client_ctx *cx,
			      const char *channel);
/* Unsubscribes (closes the connection) and frees. Accepts NULL. */
void listener_free(struct listener *l);

/*
 * After each client_ctx_run_once(): hands every request that has arrived
 * to fn, and subscribes again when the connection is down and its backoff
 * has passed. Returns how long the loop may wait before it must call
 * again (at most max_wait_ms).
 */
unsigned long listener_pass(struct listener *l, listener_fn *fn, void *arg,
			    unsigned long max_wait_ms);

#endif

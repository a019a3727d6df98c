/*
 * listener.h: the bus thread. It subscribes to the login channel and this
 * daemon's own channel, and puts every request into the mailbox for the
 * loop thread. When Redis goes away it reconnects and subscribes again.
 */
#ifndef TALKPROXY_LISTENER_H
#define TALKPROXY_LISTENER_H

struct config;
struct mailbox;
struct listener;

/* Starts the thread. cfg, mb and channel must outlive it. NULL on failure. */
struct listener *listener_start(const struct config *cfg, struct mailbox *mb,
				const char *channel);
/* Stops and joins the thread, then frees it. Accepts NULL. */
void listener_stop(struct listener *l);

#endif

/*
 * session.h: the daemon's sessions: one per logged-in user, each with its
 * XMPP client, roster, tokens and timers. Runs on the loop thread only.
 * Requests arrive here as bus envelopes; every answer goes back through
 * the bus as a reply envelope.
 */
#ifndef TALKPROXY_SESSION_H
#define TALKPROXY_SESSION_H

#include <stddef.h>

struct config;
struct bus;
struct client_ctx;
struct session_table;
struct push;

/*
 * bus is the loop thread's command connection, push the push thread (NULL:
 * no pushes); both borrowed. NULL on failure.
 */
struct session_table *session_table_new(const struct config *cfg,
					struct client_ctx *cx, struct bus *bus,
					struct push *push,
					const char *daemon_id);
/* Closes every stream and frees everything. */
void session_table_free(struct session_table *t);

/* Handles one request envelope from the bus. */
void session_table_handle(struct session_table *t, const char *msg,
			  size_t len);
/* Timers: login deadlines, reconnects, idle presence, the owner lease,
 * and freeing ended sessions. Call after every pass of the event loop. */
void session_table_tick(struct session_table *t);
/* Sends the replies and writes queued by the calls above (bus_flush):
 * call before the loop next waits. 0, or -1 when one failed (logged). */
int session_table_flush(struct session_table *t);
/*
 * Shutdown, called until it returns 0: leaves every stream the server
 * would resume to the daemon that adopts the sessions next (its record
 * says how), once the server acknowledged what was sent on it, or at once
 * with last set; closes the others. Returns how many are not done yet.
 */
size_t session_table_hand_off(struct session_table *t, int last);
size_t session_table_count(const struct session_table *t);

#endif

/*
 * bus.h: the Redis connection both programs use, and the only user of
 * hiredis. A struct bus is one connection, used by one thread. When Redis
 * goes away a call fails with -1 (logged once) and the next call reconnects.
 * Key names come from wire.h; callers build them with bus_key().
 */
#ifndef TALKPROXY_BUS_H
#define TALKPROXY_BUS_H

#include <stddef.h>

struct config;
struct bus;

/* Connects now. Returns NULL (logged) when Redis cannot be reached. */
struct bus *bus_open(const struct config *cfg);
void bus_close(struct bus *b);

/* Writes prefix + id into out; returns out. */
char *bus_key(char *out, size_t outlen, const char *prefix, const char *id);

int bus_ping(struct bus *b);
/* Sets *receivers to how many subscribers got msg. Returns 0 or -1. */
int bus_publish(struct bus *b, const char *chan, const char *msg, size_t len,
		long long *receivers);
/* Number of subscribers of chan, or -1 on error. */
long long bus_numsub(struct bus *b, const char *chan);

enum bus_route {
	BUS_ROUTE_SENT,      /* a daemon received it */
	BUS_ROUTE_NO_TOKEN,  /* no session has this token hash */
	BUS_ROUTE_DUPLICATE, /* a message with this client id was sent */
	BUS_ROUTE_NO_OWNER,  /* the session has no owning daemon */
	BUS_ROUTE_NO_DAEMON, /* the owner's channel has no subscriber */
	BUS_ROUTE_ERROR      /* Redis failed */
};
/*
 * Looks up the session of token hash th and its owner, and publishes msg to
 * the owner's channel, in one round trip (a Lua script). With a client
 * message id idem (NULL: none), nothing is published when the session's
 * idempotency key for it exists (see bus_set_ahead and wire.h).
 */
enum bus_route bus_route(struct bus *b, const char *th, const char *idem,
			 const char *msg, size_t len);

/*
 * Waits up to timeout_ms for the reply to request rid. Returns 1 with a
 * malloc'd reply in *out (caller frees), 0 on timeout, -1 on error.
 */
int bus_wait_reply(struct bus *b, const char *rid, int timeout_ms, char **out,
		   size_t *len);
/*
 * Commands sent ahead: appended to the connection's output and sent with
 * the next bus_flush() or the next other command, whichever comes first,
 * so that many share one round trip. Their failures are logged when their
 * answers are read. Both return 0, or -1 when the command was not queued.
 */
/* Pushes the reply of request rid; it expires if nobody takes it. */
int bus_reply(struct bus *b, const char *rid, const char *msg, size_t len);
/* SET key val (binary-safe), with PX ttl_ms unless ttl_ms is 0. */
int bus_set_ahead(struct bus *b, const char *key, const void *val,
		  size_t len, long long ttl_ms);
/* Sends what was sent ahead and reads its answers: 0, or -1 when one
 * failed or the connection did. */
int bus_flush(struct bus *b);

/* Binary-safe; ttl_ms 0 = no expiry. Returns 0 or -1. */
int bus_set(struct bus *b, const char *key, const void *val, size_t len,
	    long long ttl_ms);
/* SET NX: returns 1 when set, 0 when the key existed, -1 on error. */
int bus_set_nx(struct bus *b, const char *key, const char *val,
	       long long ttl_ms);
/* Returns 1 and the value in out (truncated to outlen-1), 0 when absent, -1. */
int bus_get(struct bus *b, const char *key, char *out, size_t outlen);
int bus_del(struct bus *b, const char *key);
/* Sets key to val; returns 1 with the old value in old, 0 when there was
 * none (old = ""), -1 on error. */
int bus_getset(struct bus *b, const char *key, const char *val, char *old,
	       size_t oldlen);

/*
 * A counter for rate limits: with add, INCR key (a new key lives window_s
 * seconds); without, only reads it. *count is the value (0 when absent),
 * *ttl_s the seconds left (negative when absent). 0, or -1 on error.
 */
int bus_count(struct bus *b, const char *key, int add, long long window_s,
	      long long *count, long long *ttl_s);

/* Binary-safe GET: 1 with a malloc'd *out (caller frees), 0 absent, -1. */
int bus_get_bin(struct bus *b, const char *key, void **out, size_t *len);
/* EXPIRE: 1 when key exists (its TTL now ttl_s), 0 when absent, -1. */
int bus_expire(struct bus *b, const char *key, long long ttl_s);
/* Compare-and-set of an owner key: 1 when key held from ("" = absent) and
 * now holds to, 0 when someone else changed it first, -1 on error. */
int bus_adopt(struct bus *b, const char *key, const char *from,
	      const char *to);
/*
 * One SCAN step over keys matching match from cursor (0 to start), calling
 * fn for each key. Returns the next cursor (0 when done), or -1 on error.
 */
long long bus_scan(struct bus *b, long long cursor, const char *match,
		   void (*fn)(void *ud, const char *key), void *ud);

/* Prepends val to the list key and keeps its newest cap items. 0 or -1. */
int bus_push_capped(struct bus *b, const char *key, const char *val,
		    size_t len, long cap);

/* Compare-and-delete: deletes key only while its value is val. 0 or -1. */
int bus_del_if(struct bus *b, const char *key, const char *val);

/*
 * A session's queue of incoming messages: a Redis stream whose ids are the
 * cursors clients acknowledge. Items are sealed by the caller; bounds are
 * enforced here, and what they drop is counted for the client to see.
 */
#define BUS_QID_MAX 48 /* a stream id "ms-seq" with its NUL */

struct bus_qadd {
	const char *sid;
	const void *item; /* sealed bytes */
	size_t len;
	const char *dedup;    /* NULL, or an id stored once per WIRE_SEEN_TTL_S */
	const char *push_key; /* NULL, or a key whose value should be sid */
	long long max_items, max_age_ms;
};
/* What became of one item. */
struct bus_qadded {
	int r;			/* 1 added, 0 seen before (not added), -1 failed */
	char id[BUS_QID_MAX];	/* when added: its cursor */
	int push_ok; /* a->push_key still names this session (the push URL
		      * was not taken by another) */
};
/*
 * Appends the items a[0..n), in order, in one round trip shared with the
 * commands sent ahead; out[i] says what became of a[i]. Returns 0, or -1
 * when the connection failed (items not answered have r = -1).
 */
int bus_queue_add(struct bus *b, const struct bus_qadd *a, size_t n,
		  struct bus_qadded *out);

struct bus_qitem {
	char id[BUS_QID_MAX];
	void *data; /* malloc'd */
	size_t len;
};
/*
 * Reads up to max items after cursor ("0": from the oldest), dropping
 * those older than max_age_ms first. Returns how many, with *out an array
 * freed by bus_qitems_free() and *dropped the count dropped since the last
 * acknowledgement; -1 on error.
 */
long bus_queue_read(struct bus *b, const char *sid, const char *after,
		    size_t max, long long max_age_ms, struct bus_qitem **out,
		    long long *dropped);
void bus_qitems_free(struct bus_qitem *items, size_t n);
/* Deletes every item up to and including cursor; resets the drop count. */
int bus_queue_ack(struct bus *b, const char *sid, const char *cursor);
int bus_queue_delete(struct bus *b, const char *sid);
/* 1 when s has the shape of a queue cursor (a stream id "ms-seq"). */
int bus_cursor_valid(const char *s);

/*
 * Subscriber side: subscribe once, then take messages as they come, from
 * a loop that polls bus_fd() for input.
 */
int bus_subscribe(struct bus *b, const char *const *chans, size_t n);
/*
 * The next message: one already received, else, when readable (the
 * descriptor has input), what one read brings. Never blocks otherwise.
 * Returns 1 with malloc'd *msg (caller frees) and its channel copied into
 * chan, 0 when none has arrived, -1 when the connection ended.
 */
int bus_next(struct bus *b, int readable, char *chan, size_t chanlen,
	     char **msg, size_t *len);
/* The connection's descriptor, or -1 when there is none. */
int bus_fd(const struct bus *b);

#endif

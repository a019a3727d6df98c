/*
 * fakebus.c: an in-memory bus.h for the harnesses (fakebus.h). Keys hold
 * binary values; the queue only counts and deduplicates; pub/sub has no
 * subscribers. What the daemon's Lua scripts decide (bus_queue_add's
 * push_ok, bus_adopt) is decided here from the same keys.
 */
#include "fakebus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "inbox.h"
#include "log.h"
#include "seal.h"
#include "wire.h"

struct fakebus_entry {
	struct fakebus_entry *next;
	char *key;
	void *val;
	size_t len;
};

struct bus {
	struct fakebus_entry *entries;
	unsigned long queued;
};

struct bus *fakebus_new(void)
{
	return calloc(1, sizeof(struct bus));
}

void fakebus_reset(struct bus *b)
{
	while (b->entries) {
		struct fakebus_entry *e = b->entries;
		b->entries = e->next;
		free(e->key);
		free(e->val);
		free(e);
	}
	b->queued = 0;
}

unsigned long fakebus_queued(const struct bus *b)
{
	return b->queued;
}

static struct fakebus_entry *fakebus_find(struct bus *b, const char *key)
{
	for (struct fakebus_entry *e = b->entries; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

int fakebus_put(struct bus *b, const char *key, const void *val, size_t len)
{
	struct fakebus_entry *e = fakebus_find(b, key);
	void *copy = malloc(len + 1);

	if (!copy)
		return -1;
	memcpy(copy, val, len);
	((char *)copy)[len] = '\0';
	if (!e) {
		if (!(e = calloc(1, sizeof(*e))) || !(e->key = strdup(key))) {
			free(e);
			free(copy);
			return -1;
		}
		e->next = b->entries;
		b->entries = e;
	}
	free(e->val);
	e->val = copy;
	e->len = len;
	return 0;
}

static void fakebus_drop(struct bus *b, const char *key)
{
	for (struct fakebus_entry **p = &b->entries; *p; p = &(*p)->next) {
		if (strcmp((*p)->key, key) != 0)
			continue;
		struct fakebus_entry *e = *p;
		*p = e->next;
		free(e->key);
		free(e->val);
		free(e);
		return;
	}
}

struct bus *bus_open(const struct config *cfg)
{
	(void)cfg;
	return fakebus_new();
}

void bus_close(struct bus *b)
{
	if (!b)
		return;
	fakebus_reset(b);
	free(b);
}

char *bus_key(char *out, size_t outlen, const char *prefix, const char *id)
{
	snprintf(out, outlen, "%s%s", prefix, id);
	return out;
}

int bus_ping(struct bus *b)
{
	(void)b;
	return 0;
}

int bus_publish(struct bus *b, const char *chan, const char *msg, size_t len,
		long long *receivers)
{
	(void)b, (void)chan, (void)msg, (void)len;
	*receivers = 0;
	return 0;
}

long long bus_numsub(struct bus *b, const char *chan)
{
	(void)b, (void)chan;
	return 0;
}

enum bus_route bus_route(struct bus *b, const char *th, const char *idem,
			 const char *msg, size_t len)
{
	(void)b, (void)th, (void)idem, (void)msg, (void)len;
	return BUS_ROUTE_NO_DAEMON;
}

int bus_wait_reply(struct bus *b, const char *rid, int timeout_ms, char **out,
		   size_t *len)
{
	(void)b, (void)rid, (void)timeout_ms, (void)out, (void)len;
	return 0;
}

int bus_reply(struct bus *b, const char *rid, const char *msg, size_t len)
{
	(void)b, (void)rid, (void)msg, (void)len;
	return 0;
}

int bus_set_ahead(struct bus *b, const char *key, const void *val,
		  size_t len, long long ttl_ms)
{
	(void)ttl_ms;
	return fakebus_put(b, key, val, len);
}

int bus_flush(struct bus *b)
{
	(void)b;
	return 0;
}

int bus_set(struct bus *b, const char *key, const void *val, size_t len,
	    long long ttl_ms)
{
	(void)ttl_ms;
	return fakebus_put(b, key, val, len);
}

int bus_set_nx(struct bus *b, const char *key, const char *val,
	       long long ttl_ms)
{
	(void)ttl_ms;
	if (fakebus_find(b, key))
		return 0;
	return fakebus_put(b, key, val, strlen(val)) == 0 ? 1 : -1;
}

int bus_get(struct bus *b, const char *key, char *out, size_t outlen)
{
	struct fakebus_entry *e = fakebus_find(b, key);

	if (!e)
		return 0;
	snprintf(out, outlen, "%s", (const char *)e->val);
	return 1;
}

int bus_del(struct bus *b, const char *key)
{
	fakebus_drop(b, key);
	return 0;
}

int bus_getset(struct bus *b, const char *key, const char *val, char *old,
	       size_t oldlen)
{
	int had = bus_get(b, key, old, oldlen);

	if (!had && oldlen > 0)
		old[0] = '\0';
	return fakebus_put(b, key, val, strlen(val)) == 0 ? had : -1;
}

int bus_count(struct bus *b, const char *key, int add, long long window_s,
	      long long *count, long long *ttl_s)
{
	struct fakebus_entry *e = fakebus_find(b, key);
	long long n = e ? strtoll(e->val, NULL, 10) : 0;
	char text[24];

	if (add) {
		snprintf(text, sizeof(text), "%lld", ++n);
		if (fakebus_put(b, key, text, strlen(text)) == -1)
			return -1;
	}
	*count = n;
	*ttl_s = n ? window_s : -2;
	return 0;
}

int bus_get_bin(struct bus *b, const char *key, void **out, size_t *len)
{
	struct fakebus_entry *e = fakebus_find(b, key);

	if (!e)
		return 0;
	/* Exact size, as hiredis hands it over: a sanitizer sees overreads. */
	if (!(*out = malloc(e->len ? e->len : 1)))
		return -1;
	memcpy(*out, e->val, e->len);
	*len = e->len;
	return 1;
}

int bus_expire(struct bus *b, const char *key, long long ttl_s)
{
	(void)ttl_s;
	return fakebus_find(b, key) != NULL;
}

int bus_adopt(struct bus *b, const char *key, const char *from,
	      const char *to)
{
	struct fakebus_entry *e = fakebus_find(b, key);
	const char *now = e ? (const char *)e->val : "";

	if (strcmp(now, from) != 0)
		return 0;
	return fakebus_put(b, key, to, strlen(to)) == 0 ? 1 : -1;
}

long long bus_scan(struct bus *b, long long cursor, const char *match,
		   void (*fn)(void *ud, const char *key), void *ud)
{
	/* Only the "prefix*" patterns the daemon uses. */
	size_t n = strcspn(match, "*");

	(void)cursor;
	for (struct fakebus_entry *e = b->entries; e; e = e->next)
		if (strncmp(e->key, match, n) == 0)
			fn(ud, e->key);
	return 0;
}

int bus_push_capped(struct bus *b, const char *key, const char *val,
		    size_t len, long cap)
{
	(void)cap;
	return fakebus_put(b, key, val, len);
}

int bus_del_if(struct bus *b, const char *key, const char *val)
{
	struct fakebus_entry *e = fakebus_find(b, key);

	if (e && strcmp(e->val, val) == 0)
		fakebus_drop(b, key);
	return 0;
}

static int fakebus_queue_one(struct bus *b, const struct bus_qadd *a,
			     struct bus_qadded *out)
{
	char seen[512];
	struct fakebus_entry *owner;

	if (a->dedup) {
		snprintf(seen, sizeof(seen), "%s%s:%s", WIRE_KEY_SEEN_PREFIX,
			 a->sid, a->dedup);
		if (fakebus_find(b, seen))
			return 0;
		if (fakebus_put(b, seen, "1", 1) == -1)
			return -1;
	}
	/* The script's answer: the push URL still names this session, or
	 * names nobody (a session restored before its key was written). */
	owner = a->push_key ? fakebus_find(b, a->push_key) : NULL;
	out->push_ok = !owner || strcmp(owner->val, a->sid) == 0;
	snprintf(out->id, BUS_QID_MAX, "1700000000000-%lu", ++b->queued);
	return 1;
}

int bus_queue_add(struct bus *b, const struct bus_qadd *a, size_t n,
		  struct bus_qadded *out)
{
	for (size_t i = 0; i < n; i++)
		out[i].r = fakebus_queue_one(b, &a[i], &out[i]);
	return 0;
}

long bus_queue_read(struct bus *b, const char *sid, const char *after,
		    size_t max, long long max_age_ms, struct bus_qitem **out,
		    long long *dropped)
{
	(void)b, (void)sid, (void)after, (void)max, (void)max_age_ms;
	*out = NULL;
	*dropped = 0;
	return 0;
}

void bus_qitems_free(struct bus_qitem *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		free(items[i].data);
	free(items);
}

int bus_queue_ack(struct bus *b, const char *sid, const char *cursor)
{
	(void)b, (void)sid;
	return bus_cursor_valid(cursor) ? 0 : -1;
}

int bus_queue_delete(struct bus *b, const char *sid)
{
	(void)b, (void)sid;
	return 0;
}

/* The same shape as bus.c's; the real one is fuzzed by fuzz_request. */
int bus_cursor_valid(const char *s)
{
	size_t ms = strspn(s, "0123456789"), seq;

	if (ms == 0 || ms > 20 || s[ms] != '-')
		return 0;
	seq = strspn(s + ms + 1, "0123456789");
	return seq > 0 && seq <= 20 && s[ms + 1 + seq] == '\0';
}

int bus_subscribe(struct bus *b, const char *const *chans, size_t n)
{
	(void)b, (void)chans, (void)n;
	return -1;
}

int bus_next(struct bus *b, int readable, char *chan, size_t chanlen,
	     char **msg, size_t *len)
{
	(void)b, (void)readable, (void)chan, (void)chanlen, (void)msg, (void)len;
	return -1;
}

int bus_fd(const struct bus *b)
{
	(void)b;
	return -1;
}

void fakebus_harness_init(const char *name, struct config *cfg,
			  struct inbox_env *env)
{
	config_init(cfg);
	log_open(name, "error", "/dev/null");
	if (seal_init() == -1 || !(env->bus = fakebus_new()))
		abort();
	env->cfg = cfg;
}

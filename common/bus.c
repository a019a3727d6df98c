/* bus.c: Redis access over hiredis (bus.h). */
#include "bus.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "config.h"
#include "log.h"
#include "wire.h"

enum bus_script { BUS_ROUTE, BUS_QADD, BUS_QREAD, BUS_QACK, BUS_DEL_IF,
		  BUS_ADOPT, BUS_COUNT, BUS_SCRIPTS };

/* A subscriber's reads per bus_next() at most (16 KiB each). */
#define BUS_READS_MAX 64
/* Commands sent ahead are flushed at the latest after this many. */
#define BUS_AHEAD_MAX 512

struct bus {
	redisContext *c;
	char host[CONFIG_STR_MAX];
	char socket[CONFIG_STR_MAX];
	int port;
	int timeout_ms;
	int down_logged; /* log an outage once, not once per request */
	int deferred;    /* commands sent ahead whose answers are unread */
	char sha[BUS_SCRIPTS][41]; /* SCRIPT LOAD results, "" until loaded */
};

/*
 * The scripts run inside Redis so that each operation is one round trip
 * and atomic. Indexed by enum bus_script.
 *
 * ROUTE: KEYS[1] = token key. ARGV = message, owner key prefix, daemon
 * channel prefix, client message id ("" = none), idempotency key prefix.
 * Returns -2 (no such token), -3 (that id was sent already), -1 (no
 * owner), or how many daemons received the message.
 *
 * QADD: KEYS = queue stream, drop counter, seen key ("" = no dedup), push
 * owner key ("" = none). ARGV = item, max items, max age ms, seen ttl s,
 * session id. Returns {stream id or false (a duplicate), push owner ok}.
 *
 * QREAD: KEYS = stream, drop counter. ARGV = after ("0" = start), count,
 * max age ms. Returns {dropped, id1, item1, id2, item2, ...}.
 *
 * QACK: KEYS = stream, drop counter. ARGV = cursor. Deletes every item up
 * to and including the cursor.
 *
 * DEL_IF: KEYS[1] deleted when its value is ARGV[1].
 *
 * ADOPT: KEYS[1] (an owner key) set to ARGV[2] when it still holds ARGV[1]
 * ("" = absent): two daemons adopting the same session cannot both win.
 */
#define BUS_LUA_TRIM_AGE                                                       \
	"local function trim_age(q, d, age)\n"                                 \
	"  local t = redis.call('TIME')\n"                                     \
	"  local min = (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) - age\n" \
	"  if min <= 0 then return end\n"                                      \
	"  local n = redis.call('XTRIM', q, 'MINID', string.format('%d', min))\n" \
	"  if n > 0 then redis.call('INCRBY', d, n) end\n"                     \
	"end\n"

static const char *const bus_lua[BUS_SCRIPTS] = {
	[BUS_ROUTE] =
		"local sid = redis.call('GET', KEYS[1])\n"
		"if not sid then return -2 end\n"
		"if ARGV[4] ~= '' and redis.call('EXISTS', ARGV[5] .. sid .. ':' .. ARGV[4]) == 1 then\n"
		"  return -3 end\n"
		"local owner = redis.call('GET', ARGV[2] .. sid)\n"
		"if not owner then return -1 end\n"
		"return redis.call('PUBLISH', ARGV[3] .. owner, ARGV[1])\n",
	[BUS_QADD] =
		"if KEYS[3] ~= '' then\n"
		"  if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then\n"
		"    return {false, 0} end\n"
		"end\n"
		"local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])\n"
		/* XLEN is O(1): trim only a full queue. Items past their age
		 * are dropped (and counted) by the next read, which is when
		 * it matters; the PEXPIREs end abandoned queues. */
		"if redis.call('XLEN', KEYS[1]) > tonumber(ARGV[2]) then\n"
		"  local n = redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[2])\n"
		"  if n > 0 then redis.call('INCRBY', KEYS[2], n) end\n"
		"end\n"
		/* Every item is past its age by then: an abandoned queue ends.
		 * The margin lets a reader still learn what was dropped. */
		"local ttl = 2 * tonumber(ARGV[3]) + 60000\n"
		"redis.call('PEXPIRE', KEYS[1], ttl)\n"
		"redis.call('PEXPIRE', KEYS[2], ttl)\n"
		"local ok = 0\n"
		"if KEYS[4] ~= '' and redis.call('GET', KEYS[4]) == ARGV[5] then ok = 1 end\n"
		"return {id, ok}\n",
	[BUS_QREAD] = BUS_LUA_TRIM_AGE
		"trim_age(KEYS[1], KEYS[2], tonumber(ARGV[3]))\n"
		"local start = '-'\n"
		"if ARGV[1] ~= '0' then start = '(' .. ARGV[1] end\n"
		"local items = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', ARGV[2])\n"
		"local out = {tonumber(redis.call('GET', KEYS[2]) or '0')}\n"
		"for _, e in ipairs(items) do\n"
		"  out[#out + 1] = e[1]\n"
		"  out[#out + 1] = e[2][2]\n"
		"end\n"
		"return out\n",
	[BUS_QACK] =
		"local ms, seq = string.match(ARGV[1], '^(%d+)-(%d+)$')\n"
		"if not ms then return redis.error_reply('bad cursor') end\n"
		"redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. string.format('%d', tonumber(seq) + 1))\n"
		"redis.call('DEL', KEYS[2])\n"
		"return 0\n",
	[BUS_DEL_IF] =
		"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
		"  return redis.call('DEL', KEYS[1]) end\n"
		"return 0\n",
	[BUS_ADOPT] =
		"local cur = redis.call('GET', KEYS[1]) or ''\n"
		"if cur ~= ARGV[1] then return 0 end\n"
		"redis.call('SET', KEYS[1], ARGV[2])\n"
		"return 1\n",
	/* A counter that starts a window of ARGV[2] seconds when created. */
	[BUS_COUNT] =
		"local n = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
		"if ARGV[1] == '1' then\n"
		"  n = redis.call('INCR', KEYS[1])\n"
		"  if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end\n"
		"end\n"
		"return {n, redis.call('TTL', KEYS[1])}\n",
};

static struct timeval bus_tv(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	return tv;
}

static int bus_connect(struct bus *b)
{
	struct timeval tv = bus_tv(b->timeout_ms);

	b->c = b->socket[0] ? redisConnectUnixWithTimeout(b->socket, tv)
			    : redisConnectWithTimeout(b->host, b->port, tv);
	if (!b->c || b->c->err) {
		if (!b->down_logged)
			log_error("redis %s:%d: %s", b->socket[0] ? b->socket : b->host,
				  b->port, b->c ? b->c->errstr : "out of memory");
		b->down_logged = 1;
		redisFree(b->c);
		b->c = NULL;
		return -1;
	}
	redisSetTimeout(b->c, tv);
	if (b->down_logged)
		log_info("redis connection restored");
	b->down_logged = 0;
	return 0;
}

struct bus *bus_open(const struct config *cfg)
{
	struct bus *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	snprintf(b->host, sizeof(b->host), "%s", cfg->redis_host);
	snprintf(b->socket, sizeof(b->socket), "%s", cfg->redis_socket);
	b->port = cfg->redis_port;
	b->timeout_ms = cfg->redis_timeout_ms;
	if (bus_connect(b) == -1) {
		free(b);
		return NULL;
	}
	return b;
}

void bus_close(struct bus *b)
{
	if (!b)
		return;
	if (b->c)
		bus_flush(b);
	if (b->c)
		redisFree(b->c);
	free(b);
}

char *bus_key(char *out, size_t outlen, const char *prefix, const char *id)
{
	snprintf(out, outlen, "%s%s", prefix, id);
	return out;
}

/* The connection failed: log it, drop the context, and let the next call
 * reconnect. Returns NULL for the caller to pass on. */
static redisReply *bus_drop(struct bus *b)
{
	log_error("redis: %s", b->c->errstr);
	if (b->deferred)
		log_error("redis: the answers of %d commands sent ahead are lost",
			  b->deferred);
	b->deferred = 0;
	b->down_logged = 1;
	redisFree(b->c);
	b->c = NULL;
	return NULL;
}

static int bus_pipeline(struct bus *b, int n, const char *what);

/*
 * Connected, with no answers of commands sent ahead left unread, so that
 * the next answer read is the next command's: 0, or -1.
 */
static int bus_ready(struct bus *b)
{
	if (!b->c)
		return bus_connect(b);
	if (b->deferred)
		bus_flush(b);
	return b->c ? 0 : -1;
}

int bus_flush(struct bus *b)
{
	int n = b->deferred;

	if (!n)
		return 0;
	b->deferred = 0;
	return bus_pipeline(b, n, "command sent ahead");
}

/* After appending n commands sent ahead; a long run is flushed rather
 * than left to grow. */
static int bus_sent_ahead(struct bus *b, int n)
{
	b->deferred += n;
	return b->deferred >= BUS_AHEAD_MAX ? bus_flush(b) : 0;
}

/* Runs one command. Returns the reply (caller frees) or NULL. */
static redisReply *bus_vcmd(struct bus *b, const char *fmt, va_list ap)
{
	if (bus_ready(b) == -1)
		return NULL;
	redisReply *r = redisvCommand(b->c, fmt, ap);
	return r ? r : bus_drop(b);
}

static redisReply *bus_cmd(struct bus *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	redisReply *r = bus_vcmd(b, fmt, ap);
	va_end(ap);
	return r;
}

/* For commands whose reply is only a status: 0 or -1. */
static int bus_status(redisReply *r, const char *what)
{
	int ok = r && r->type != REDIS_REPLY_ERROR;

	if (r && !ok)
		log_error("redis %s: %s", what, r->str);
	freeReplyObject(r);
	return ok ? 0 : -1;
}

/* Reads the n replies of commands appended with redisAppendCommand(), each
 * only a status. Returns 0, or -1 when one failed or the connection did. */
static int bus_pipeline(struct bus *b, int n, const char *what)
{
	redisReply *r;
	int ret = 0;

	for (int i = 0; i < n; i++) {
		if (redisGetReply(b->c, (void **)&r) != REDIS_OK) {
			bus_drop(b);
			return -1;
		}
		if (bus_status(r, what) == -1)
			ret = -1;
	}
	return ret;
}

int bus_ping(struct bus *b)
{
	return bus_status(bus_cmd(b, "PING"), "PING");
}

int bus_publish(struct bus *b, const char *chan, const char *msg, size_t len,
		long long *receivers)
{
	redisReply *r = bus_cmd(b, "PUBLISH %s %b", chan, msg, len);

	if (!r || r->type != REDIS_REPLY_INTEGER) {
		bus_status(r, "PUBLISH");
		return -1;
	}
	*receivers = r->integer;
	freeReplyObject(r);
	return 0;
}

long long bus_numsub(struct bus *b, const char *chan)
{
	redisReply *r = bus_cmd(b, "PUBSUB NUMSUB %s", chan);
	long long n = -1;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_INTEGER)
		n = r->element[1]->integer;
	freeReplyObject(r);
	return n;
}

/* argv[0..1] of a script call by its SHA: EVALSHA <sha>. */
static void bus_evalsha_head(const struct bus *b, enum bus_script id,
			     const char **argv, size_t *lens)
{
	argv[0] = "EVALSHA";
	lens[0] = 7;
	argv[1] = b->sha[id];
	lens[1] = 40;
}

static redisReply *bus_evalsha(struct bus *b, enum bus_script id, int argc,
				const char **argv, size_t *lens)
{
	bus_evalsha_head(b, id, argv, lens);
	if (bus_ready(b) == -1)
		return NULL;
	redisReply *r = redisCommandArgv(b->c, argc, argv, lens);
	return r ? r : bus_drop(b);
}

/* Loads script id when this connection's Redis has not given its SHA
 * yet; 0, or -1. A restarted Redis forgets scripts: see bus_eval(). */
static int bus_script_ready(struct bus *b, enum bus_script id)
{
	if (b->sha[id][0])
		return 0;
	redisReply *r = bus_cmd(b, "SCRIPT LOAD %s", bus_lua[id]);
	if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
		bus_status(r, "SCRIPT LOAD");
		return -1;
	}
	memcpy(b->sha[id], r->str, 41);
	freeReplyObject(r);
	return 0;
}

static int bus_noscript(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ERROR &&
	       strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/*
 * Runs script id with nkeys keys then args (argv[0..n), lens) by its SHA,
 * loading it first when this connection's Redis does not know it (a
 * restarted Redis forgets scripts). argv[0] and argv[1] are filled here.
 */
static redisReply *bus_eval(struct bus *b, enum bus_script id, int argc,
			    const char **argv, size_t *lens)
{
	redisReply *r;

	if (b->sha[id][0]) {
		r = bus_evalsha(b, id, argc, argv, lens);
		if (!bus_noscript(r))
			return r;
		freeReplyObject(r);
		b->sha[id][0] = '\0';
	}
	if (bus_script_ready(b, id) == -1)
		return NULL;
	return bus_evalsha(b, id, argc, argv, lens);
}

/* Fills argv/lens from NUL-terminated strings, from index 2 on. */
static void bus_args(const char **argv, size_t *lens, int n, ...)
{
	va_list ap;

	va_start(ap, n);
	for (int i = 2; i < n; i++) {
		argv[i] = va_arg(ap, const char *);
		lens[i] = strlen(argv[i]);
	}
	va_end(ap);
}

static redisReply *bus_eval_route(struct bus *b, const char *key,
				  const char *msg, size_t len, const char *idem)
{
	const char *argv[9];
	size_t lens[9];

	bus_args(argv, lens, 9, "1", key, msg, WIRE_KEY_OWNER_PREFIX,
		 WIRE_CHAN_DAEMON_PREFIX, idem ? idem : "",
		 WIRE_KEY_IDEM_PREFIX);
	lens[4] = len; /* msg and idem may hold anything */
	if (idem)
		lens[7] = strlen(idem);
	return bus_eval(b, BUS_ROUTE, 9, argv, lens);
}

enum bus_route bus_route(struct bus *b, const char *th, const char *idem,
			 const char *msg, size_t len)
{
	char key[128];
	enum bus_route res;

	bus_key(key, sizeof(key), WIRE_KEY_TOKEN_PREFIX, th);
	redisReply *r = bus_eval_route(b, key, msg, len, idem);
	if (!r)
		return BUS_ROUTE_ERROR;
	if (r->type != REDIS_REPLY_INTEGER) {
		bus_status(r, "route");
		return BUS_ROUTE_ERROR;
	}
	res = r->integer == -3	 ? BUS_ROUTE_DUPLICATE
	      : r->integer == -2 ? BUS_ROUTE_NO_TOKEN
	      : r->integer == -1 ? BUS_ROUTE_NO_OWNER
	      : r->integer == 0	 ? BUS_ROUTE_NO_DAEMON
				 : BUS_ROUTE_SENT;
	freeReplyObject(r);
	return res;
}

/*
 * One BLPOP of at most half the socket's timeout, so that the socket
 * outlives it without a setsockopt() pair around every wait (4 of a
 * handler's 17 system calls per request). Returns the reply or NULL.
 */
static redisReply *bus_blpop_slice(struct bus *b, const char *key,
				   int64_t *left_ms)
{
	int64_t slice = b->timeout_ms / 2 > 0 ? b->timeout_ms / 2 : 1;

	if (slice > *left_ms)
		slice = *left_ms;
	*left_ms -= slice;
	return bus_cmd(b, "BLPOP %s %.3f", key, slice / 1000.0);
}

int bus_wait_reply(struct bus *b, const char *rid, int timeout_ms, char **out,
		   size_t *len)
{
	char key[128];
	int64_t left = timeout_ms > 0 ? timeout_ms : 1;
	redisReply *r = NULL;
	int ret = -1;

	bus_key(key, sizeof(key), WIRE_KEY_REPLY_PREFIX, rid);
	if (bus_ready(b) == -1)
		return -1;
	do {
		freeReplyObject(r);
		r = bus_blpop_slice(b, key, &left);
	} while (r && r->type == REDIS_REPLY_NIL && left > 0);
	if (r && r->type == REDIS_REPLY_NIL) {
		ret = 0;
	} else if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		   r->element[1]->type == REDIS_REPLY_STRING) {
		*out = malloc(r->element[1]->len + 1);
		if (*out) {
			memcpy(*out, r->element[1]->str, r->element[1]->len + 1);
			*len = r->element[1]->len;
			ret = 1;
		}
	} else if (r) {
		bus_status(r, "BLPOP");
		return -1;
	}
	freeReplyObject(r);
	return ret;
}

/* Connected, for a command sent ahead; a pending flush is not forced. */
static int bus_connected(struct bus *b)
{
	return b->c || bus_connect(b) == 0 ? 0 : -1;
}

int bus_reply(struct bus *b, const char *rid, const char *msg, size_t len)
{
	char key[128];
	int n = 0;

	bus_key(key, sizeof(key), WIRE_KEY_REPLY_PREFIX, rid);
	if (bus_connected(b) == -1)
		return -1;
	/* Sent ahead: the replies of a loop pass share one round trip. */
	if (redisAppendCommand(b->c, "LPUSH %s %b", key, msg, len) == REDIS_OK &&
	    ++n &&
	    redisAppendCommand(b->c, "EXPIRE %s %d", key, WIRE_REPLY_TTL_S) ==
		    REDIS_OK)
		n++;
	int r = bus_sent_ahead(b, n);
	return n == 2 ? r : -1;
}

int bus_set_ahead(struct bus *b, const char *key, const void *val,
		  size_t len, long long ttl_ms)
{
	int r;

	if (bus_connected(b) == -1)
		return -1;
	r = ttl_ms > 0 ? redisAppendCommand(b->c, "SET %s %b PX %lld", key, val,
					    len, ttl_ms)
		       : redisAppendCommand(b->c, "SET %s %b", key, val, len);
	return r == REDIS_OK ? bus_sent_ahead(b, 1) : -1;
}

int bus_set(struct bus *b, const char *key, const void *val, size_t len,
	    long long ttl_ms)
{
	return bus_set_ahead(b, key, val, len, ttl_ms) == 0 ? bus_flush(b) : -1;
}

int bus_set_nx(struct bus *b, const char *key, const char *val,
	       long long ttl_ms)
{
	redisReply *r = bus_cmd(b, "SET %s %s NX PX %lld", key, val, ttl_ms);
	int ret = -1;

	if (r && r->type == REDIS_REPLY_STATUS)
		ret = 1;
	else if (r && r->type == REDIS_REPLY_NIL)
		ret = 0;
	else
		return bus_status(r, "SET NX");
	freeReplyObject(r);
	return ret;
}

int bus_get(struct bus *b, const char *key, char *out, size_t outlen)
{
	redisReply *r = bus_cmd(b, "GET %s", key);
	int ret = -1;

	if (r && r->type == REDIS_REPLY_NIL) {
		ret = 0;
	} else if (r && r->type == REDIS_REPLY_STRING) {
		snprintf(out, outlen, "%.*s", (int)r->len, r->str);
		ret = 1;
	} else {
		return bus_status(r, "GET");
	}
	freeReplyObject(r);
	return ret;
}

int bus_getset(struct bus *b, const char *key, const char *val, char *old,
	       size_t oldlen)
{
	redisReply *r = bus_cmd(b, "SET %s %s GET", key, val);
	int ret = -1;

	old[0] = '\0';
	if (r && r->type == REDIS_REPLY_NIL) {
		ret = 0;
	} else if (r && r->type == REDIS_REPLY_STRING) {
		snprintf(old, oldlen, "%.*s", (int)r->len, r->str);
		ret = 1;
	} else {
		return bus_status(r, "SET GET");
	}
	freeReplyObject(r);
	return ret;
}

int bus_del(struct bus *b, const char *key)
{
	return bus_status(bus_cmd(b, "DEL %s", key), "DEL");
}

int bus_subscribe(struct bus *b, const char *const *chans, size_t n)
{
	if (bus_ready(b) == -1)
		return -1;
	/* A subscriber waits for as long as it takes: no read timeout. */
	redisSetTimeout(b->c, (struct timeval){0, 0});
	for (size_t i = 0; i < n; i++) {
		redisReply *r = bus_cmd(b, "SUBSCRIBE %s", chans[i]);
		if (!r || r->type != REDIS_REPLY_ARRAY) {
			bus_status(r, "SUBSCRIBE");
			return -1;
		}
		freeReplyObject(r);
	}
	return 0;
}

/* The next whole reply already read from the socket: 1 (*r set), 0 none,
 * -1 when the connection failed. */
static int bus_buffered(struct bus *b, redisReply **r)
{
	*r = NULL;
	if (redisGetReplyFromReader(b->c, (void **)r) != REDIS_OK)
		return -1;
	return *r != NULL;
}

static int bus_is_message(const redisReply *r)
{
	return r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	       r->element[0]->type == REDIS_REPLY_STRING &&
	       strcmp(r->element[0]->str, "message") == 0 &&
	       r->element[1]->type == REDIS_REPLY_STRING &&
	       r->element[2]->type == REDIS_REPLY_STRING;
}

/*
 * Reads everything the socket holds (up to a bound), so that a request is
 * never left queued behind others for another pass of the caller's loop:
 * one read takes 16 KiB, about 30 login requests. Each read is done only
 * when the kernel says data is there: the socket blocks. 0 or -1.
 */
static int bus_read_all(struct bus *b)
{
	int avail = 1;

	for (int i = 0; i < BUS_READS_MAX && avail > 0; i++) {
		if (redisBufferRead(b->c) != REDIS_OK)
			return -1;
		if (ioctl(b->c->fd, FIONREAD, &avail) == -1)
			avail = 0;
	}
	return 0;
}

int bus_next(struct bus *b, int readable, char *chan, size_t chanlen,
	     char **msg, size_t *len)
{
	redisReply *r;
	int got;

	for (;;) {
		if (!b->c)
			return -1;
		if ((got = bus_buffered(b, &r)) == -1)
			return -1;
		if (got && bus_is_message(r))
			break;
		freeReplyObject(r);
		if (got)
			continue;
		/* Reads once per call at most: the caller's poll said the
		 * socket has input, and only that. */
		if (!readable)
			return 0;
		readable = 0;
		if (bus_read_all(b) == -1)
			return -1;
	}
	*msg = malloc(r->element[2]->len + 1);
	if (*msg) {
		memcpy(*msg, r->element[2]->str, r->element[2]->len + 1);
		*len = r->element[2]->len;
		snprintf(chan, chanlen, "%s", r->element[1]->str);
	}
	freeReplyObject(r);
	return *msg ? 1 : -1;
}

int bus_fd(const struct bus *b)
{
	return b && b->c ? b->c->fd : -1;
}

/* ---- the incoming-message queue of a session (a Redis stream) ---- */

int bus_cursor_valid(const char *s)
{
	size_t ms = strspn(s, "0123456789");

	/* Redis stream ids: two 64-bit decimal numbers joined by '-'. */
	if (ms == 0 || ms > 20 || s[ms] != '-')
		return 0;
	size_t seq = strspn(s + ms + 1, "0123456789");
	return seq > 0 && seq <= 20 && s[ms + 1 + seq] == '\0';
}

static void bus_queue_keys(const char *sid, char q[128], char d[128])
{
	snprintf(q, 128, "%s%s", WIRE_KEY_QUEUE_PREFIX, sid);
	snprintf(d, 128, "%s%s", WIRE_KEY_QDROP_PREFIX, sid);
}

/* Appends a's script call to the connection's output; 0 or -1. */
static int bus_qadd_append(struct bus *b, const struct bus_qadd *a)
{
	char q[128], d[128], seen[256] = "", items[24], age[24], ttl[24];
	const char *argv[12];
	size_t lens[12];

	bus_queue_keys(a->sid, q, d);
	if (a->dedup)
		snprintf(seen, sizeof(seen), "%s%s:%s", WIRE_KEY_SEEN_PREFIX,
			 a->sid, a->dedup);
	snprintf(items, sizeof(items), "%lld", a->max_items);
	snprintf(age, sizeof(age), "%lld", a->max_age_ms);
	snprintf(ttl, sizeof(ttl), "%d", WIRE_SEEN_TTL_S);
	bus_args(argv, lens, 12, "4", q, d, seen, a->push_key ? a->push_key : "",
		 "", items, age, ttl, a->sid);
	bus_evalsha_head(b, BUS_QADD, argv, lens);
	argv[7] = (const char *)a->item; /* sealed bytes, not a string */
	lens[7] = a->len;
	return redisAppendCommandArgv(b->c, 12, argv, lens) == REDIS_OK ? 0
									: -1;
}

/* Takes r, one script answer, into *out. */
static void bus_qadd_answer(redisReply *r, struct bus_qadded *out)
{
	out->r = -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[1]->type != REDIS_REPLY_INTEGER) {
		bus_status(r, "queue add");
		return;
	}
	out->push_ok = r->element[1]->integer == 1;
	out->r = 0; /* Lua false: seen before */
	if (r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[0]->len < BUS_QID_MAX) {
		memcpy(out->id, r->element[0]->str, r->element[0]->len + 1);
		out->r = 1;
	}
	freeReplyObject(r);
}

/*
 * Sends a[0..n) behind the commands sent ahead and reads every answer, in
 * one round trip. An item Redis no longer had the script for is marked
 * with r = -2 for the caller to send again once it is loaded.
 */
static int bus_qadd_round(struct bus *b, const struct bus_qadd *a, size_t n,
			  struct bus_qadded *out)
{
	size_t sent = 0;
	redisReply *r;

	while (sent < n && bus_qadd_append(b, &a[sent]) == 0)
		sent++;
	if (sent < n)
		log_error("redis queue add: out of memory; %zu of %zu not sent",
			  n - sent, n);
	if (bus_flush(b) == -1 && !b->c)
		return -1;
	for (size_t i = 0; i < sent; i++) {
		if (redisGetReply(b->c, (void **)&r) != REDIS_OK) {
			bus_drop(b);
			return -1;
		}
		if (bus_noscript(r)) {
			freeReplyObject(r);
			out[i].r = -2;
			b->sha[BUS_QADD][0] = '\0';
			continue;
		}
		bus_qadd_answer(r, &out[i]);
	}
	return 0;
}

int bus_queue_add(struct bus *b, const struct bus_qadd *a, size_t n,
		  struct bus_qadded *out)
{
	int ret;

	for (size_t i = 0; i < n; i++)
		out[i].r = -1;
	if (bus_connected(b) == -1 || bus_script_ready(b, BUS_QADD) == -1)
		return -1;
	ret = bus_qadd_round(b, a, n, out);
	/* Redis forgot the script in the middle (SCRIPT FLUSH): once more,
	 * one by one, each after loading it again. */
	for (size_t i = 0; i < n; i++)
		if (out[i].r == -2 &&
		    (ret == -1 || bus_script_ready(b, BUS_QADD) == -1 ||
		     bus_qadd_round(b, &a[i], 1, &out[i]) == -1 ||
		     out[i].r == -2))
			out[i].r = -1;
	return ret;
}

static int bus_qitems_take(redisReply *r, struct bus_qitem *items)
{
	size_t n = (r->elements - 1) / 2;

	for (size_t i = 0; i < n; i++) {
		redisReply *id = r->element[1 + 2 * i], *m = r->element[2 + 2 * i];
		if (id->type != REDIS_REPLY_STRING || id->len >= BUS_QID_MAX ||
		    m->type != REDIS_REPLY_STRING)
			return -1;
		memcpy(items[i].id, id->str, id->len + 1);
		items[i].data = malloc(m->len ? m->len : 1);
		if (!items[i].data)
			return -1;
		memcpy(items[i].data, m->str, m->len);
		items[i].len = m->len;
	}
	return 0;
}

long bus_queue_read(struct bus *b, const char *sid, const char *after,
		    size_t max, long long max_age_ms, struct bus_qitem **out,
		    long long *dropped)
{
	char q[128], d[128], count[24], age[24];
	const char *argv[8];
	size_t lens[8];

	bus_queue_keys(sid, q, d);
	snprintf(count, sizeof(count), "%zu", max);
	snprintf(age, sizeof(age), "%lld", max_age_ms);
	bus_args(argv, lens, 8, "2", q, d, after, count, age);
	redisReply *r = bus_eval(b, BUS_QREAD, 8, argv, lens);
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->elements % 2 != 1 || r->element[0]->type != REDIS_REPLY_INTEGER)
		return bus_status(r, "queue read");
	long n = (long)(r->elements - 1) / 2;
	*dropped = r->element[0]->integer;
	*out = calloc(n ? (size_t)n : 1, sizeof(**out));
	if (!*out || bus_qitems_take(r, *out) == -1) {
		log_error("redis queue read: malformed answer or no memory");
		bus_qitems_free(*out, (size_t)n);
		*out = NULL;
		n = -1;
	}
	freeReplyObject(r);
	return n;
}

void bus_qitems_free(struct bus_qitem *items, size_t n)
{
	if (!items)
		return;
	for (size_t i = 0; i < n; i++) {
		free(items[i].data);
	}
	free(items);
}

int bus_queue_ack(struct bus *b, const char *sid, const char *cursor)
{
	char q[128], d[128];
	const char *argv[6];
	size_t lens[6];

	if (!bus_cursor_valid(cursor))
		return -1;
	bus_queue_keys(sid, q, d);
	bus_args(argv, lens, 6, "2", q, d, cursor);
	return bus_status(bus_eval(b, BUS_QACK, 6, argv, lens), "queue ack");
}

int bus_queue_delete(struct bus *b, const char *sid)
{
	char q[128], d[128];

	bus_queue_keys(sid, q, d);
	return bus_status(bus_cmd(b, "DEL %s %s", q, d), "queue delete");
}

int bus_del_if(struct bus *b, const char *key, const char *val)
{
	const char *argv[5];
	size_t lens[5];

	bus_args(argv, lens, 5, "1", key, val);
	return bus_status(bus_eval(b, BUS_DEL_IF, 5, argv, lens), "DEL IF");
}

int bus_adopt(struct bus *b, const char *key, const char *from,
	      const char *to)
{
	const char *argv[6];
	size_t lens[6];

	bus_args(argv, lens, 6, "1", key, from, to);
	redisReply *r = bus_eval(b, BUS_ADOPT, 6, argv, lens);
	if (!r || r->type != REDIS_REPLY_INTEGER)
		return bus_status(r, "adopt");
	int won = r->integer == 1;
	freeReplyObject(r);
	return won;
}

int bus_count(struct bus *b, const char *key, int add, long long window_s,
	      long long *count, long long *ttl_s)
{
	const char *argv[6];
	size_t lens[6];
	char window[32];

	snprintf(window, sizeof(window), "%lld", window_s);
	bus_args(argv, lens, 6, "1", key, add ? "1" : "0", window);
	redisReply *r = bus_eval(b, BUS_COUNT, 6, argv, lens);
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER)
		return bus_status(r, "count");
	*count = r->element[0]->integer;
	*ttl_s = r->element[1]->integer;
	freeReplyObject(r);
	return 0;
}

int bus_get_bin(struct bus *b, const char *key, void **out, size_t *len)
{
	redisReply *r = bus_cmd(b, "GET %s", key);
	int ret = 0;

	if (!r || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING))
		return bus_status(r, "GET");
	if (r->type == REDIS_REPLY_STRING) {
		*out = malloc(r->len ? r->len : 1);
		if (*out) {
			memcpy(*out, r->str, r->len);
			*len = r->len;
			ret = 1;
		} else {
			ret = -1;
		}
	}
	freeReplyObject(r);
	return ret;
}

int bus_expire(struct bus *b, const char *key, long long ttl_s)
{
	redisReply *r = bus_cmd(b, "EXPIRE %s %lld", key, ttl_s);

	if (!r || r->type != REDIS_REPLY_INTEGER)
		return bus_status(r, "EXPIRE");
	int exists = r->integer == 1;
	freeReplyObject(r);
	return exists;
}

long long bus_scan(struct bus *b, long long cursor, const char *match,
		   void (*fn)(void *ud, const char *key), void *ud)
{
	redisReply *r = bus_cmd(b, "SCAN %lld MATCH %s COUNT 500", cursor, match);
	long long next;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_ARRAY)
		return bus_status(r, "SCAN");
	next = strtoll(r->element[0]->str, NULL, 10);
	for (size_t i = 0; i < r->element[1]->elements; i++) {
		redisReply *k = r->element[1]->element[i];
		if (k->type == REDIS_REPLY_STRING)
			fn(ud, k->str);
	}
	freeReplyObject(r);
	return next;
}

int bus_push_capped(struct bus *b, const char *key, const char *val,
		    size_t len, long cap)
{
	if (bus_ready(b) == -1)
		return -1;
	/* Pipelined: the push and the trim in one round trip. */
	redisAppendCommand(b->c, "LPUSH %s %b", key, val, len);
	redisAppendCommand(b->c, "LTRIM %s 0 %ld", key, cap - 1);
	return bus_pipeline(b, 2, "LPUSH/LTRIM");
}

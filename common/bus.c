/* bus.c: Redis access over hiredis (bus.h). */
#include "bus.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "log.h"
#include "wire.h"

struct bus {
	redisContext *c;
	char host[CONFIG_STR_MAX];
	char socket[CONFIG_STR_MAX];
	int port;
	int timeout_ms;
	int down_logged; /* log an outage once, not once per request */
	char route_sha[41];
};

/*
 * KEYS[1] = token key. ARGV = message, owner key prefix, daemon channel
 * prefix. One round trip instead of three on every API call.
 */
static const char bus_route_lua[] =
	"local sid = redis.call('GET', KEYS[1])\n"
	"if not sid then return -2 end\n"
	"local owner = redis.call('GET', ARGV[2] .. sid)\n"
	"if not owner then return -1 end\n"
	"return redis.call('PUBLISH', ARGV[3] .. owner, ARGV[1])\n";

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
	redisFree(b->c);
	free(b);
}

char *bus_key(char *out, size_t outlen, const char *prefix, const char *id)
{
	snprintf(out, outlen, "%s%s", prefix, id);
	return out;
}

/* Runs one command; on a connection failure drops the context so the next
 * call reconnects. Returns the reply (caller frees) or NULL. */
static redisReply *bus_vcmd(struct bus *b, const char *fmt, va_list ap)
{
	if (!b->c && bus_connect(b) == -1)
		return NULL;
	redisReply *r = redisvCommand(b->c, fmt, ap);
	if (!r) {
		log_error("redis: %s", b->c->errstr);
		b->down_logged = 1;
		redisFree(b->c);
		b->c = NULL;
	}
	return r;
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

static redisReply *bus_eval_route(struct bus *b, const char *key,
				  const char *msg, size_t len)
{
	redisReply *r = NULL;

	if (b->route_sha[0]) {
		r = bus_cmd(b, "EVALSHA %s 1 %s %b %s %s", b->route_sha, key,
			    msg, len, WIRE_KEY_OWNER_PREFIX,
			    WIRE_CHAN_DAEMON_PREFIX);
		/* A restarted Redis forgets scripts: load it again below. */
		if (!r || r->type != REDIS_REPLY_ERROR ||
		    strncmp(r->str, "NOSCRIPT", 8) != 0)
			return r;
		freeReplyObject(r);
	}
	r = bus_cmd(b, "SCRIPT LOAD %s", bus_route_lua);
	if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
		bus_status(r, "SCRIPT LOAD");
		return NULL;
	}
	memcpy(b->route_sha, r->str, 41);
	freeReplyObject(r);
	return bus_cmd(b, "EVALSHA %s 1 %s %b %s %s", b->route_sha, key, msg,
		       len, WIRE_KEY_OWNER_PREFIX, WIRE_CHAN_DAEMON_PREFIX);
}

enum bus_route bus_route(struct bus *b, const char *th, const char *msg,
			 size_t len)
{
	char key[128];
	enum bus_route res;

	bus_key(key, sizeof(key), WIRE_KEY_TOKEN_PREFIX, th);
	redisReply *r = bus_eval_route(b, key, msg, len);
	if (!r)
		return BUS_ROUTE_ERROR;
	if (r->type != REDIS_REPLY_INTEGER) {
		bus_status(r, "route");
		return BUS_ROUTE_ERROR;
	}
	res = r->integer == -2	 ? BUS_ROUTE_NO_TOKEN
	      : r->integer == -1 ? BUS_ROUTE_NO_OWNER
	      : r->integer == 0	 ? BUS_ROUTE_NO_DAEMON
				 : BUS_ROUTE_SENT;
	freeReplyObject(r);
	return res;
}

int bus_wait_reply(struct bus *b, const char *rid, int timeout_ms, char **out,
		   size_t *len)
{
	char key[128];
	int ret = -1;

	bus_key(key, sizeof(key), WIRE_KEY_REPLY_PREFIX, rid);
	if (!b->c && bus_connect(b) == -1)
		return -1;
	/* The socket must outlive the BLPOP, or hiredis gives up first. */
	redisSetTimeout(b->c, bus_tv(timeout_ms + b->timeout_ms));
	redisReply *r = bus_cmd(b, "BLPOP %s %.3f", key, timeout_ms / 1000.0);
	if (b->c)
		redisSetTimeout(b->c, bus_tv(b->timeout_ms));
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

int bus_reply(struct bus *b, const char *rid, const char *msg, size_t len)
{
	char key[128];
	redisReply *r;

	bus_key(key, sizeof(key), WIRE_KEY_REPLY_PREFIX, rid);
	if (!b->c && bus_connect(b) == -1)
		return -1;
	/* Pipelined: one round trip for the push and its expiry. */
	redisAppendCommand(b->c, "LPUSH %s %b", key, msg, len);
	redisAppendCommand(b->c, "EXPIRE %s %d", key, WIRE_REPLY_TTL_S);
	int ret = 0;
	for (int i = 0; i < 2; i++) {
		if (redisGetReply(b->c, (void **)&r) != REDIS_OK) {
			log_error("redis reply: %s", b->c->errstr);
			redisFree(b->c);
			b->c = NULL;
			return -1;
		}
		if (bus_status(r, "LPUSH/EXPIRE") == -1)
			ret = -1;
	}
	return ret;
}

int bus_set(struct bus *b, const char *key, const char *val, size_t len,
	    long long ttl_ms)
{
	if (ttl_ms > 0)
		return bus_status(bus_cmd(b, "SET %s %b PX %lld", key, val, len,
					  ttl_ms),
				  "SET");
	return bus_status(bus_cmd(b, "SET %s %b", key, val, len), "SET");
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

int bus_del(struct bus *b, const char *key)
{
	return bus_status(bus_cmd(b, "DEL %s", key), "DEL");
}

int bus_subscribe(struct bus *b, const char *const *chans, size_t n)
{
	if (!b->c && bus_connect(b) == -1)
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

int bus_next(struct bus *b, char *chan, size_t chanlen, char **msg,
	     size_t *len)
{
	redisReply *r;

	for (;;) {
		if (!b->c || redisGetReply(b->c, (void **)&r) != REDIS_OK)
			return -1;
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[0]->str, "message") == 0 &&
		    r->element[2]->type == REDIS_REPLY_STRING)
			break;
		freeReplyObject(r);
	}
	*msg = malloc(r->element[2]->len + 1);
	if (*msg) {
		memcpy(*msg, r->element[2]->str, r->element[2]->len + 1);
		*len = r->element[2]->len;
		snprintf(chan, chanlen, "%s", r->element[1]->str);
	}
	freeReplyObject(r);
	return *msg ? 0 : -1;
}

void bus_interrupt(struct bus *b)
{
	if (b && b->c)
		shutdown(b->c->fd, SHUT_RDWR);
}

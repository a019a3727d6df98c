/* listener.c: the daemon's request subscription (listener.h). */
#include "listener.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "client.h"
#include "log.h"
#include "wire.h"

#define LISTENER_BACKOFF_MIN_MS 50
#define LISTENER_BACKOFF_MAX_MS 2000
/* Requests taken per pass at most, so that a flood cannot keep the
 * streams and timers from their turn. */
#define LISTENER_BATCH_MAX 256

struct listener {
	const struct config *cfg;
	struct client_ctx *cx;
	const char *channel;
	struct bus *bus;  /* NULL while disconnected */
	int backoff_ms;
	int64_t retry_ms; /* when to subscribe again */
};

static int64_t listener_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void listener_down(struct listener *l, int64_t now)
{
	bus_close(l->bus);
	l->bus = NULL;
	l->retry_ms = now + l->backoff_ms;
	l->backoff_ms = l->backoff_ms * 2 > LISTENER_BACKOFF_MAX_MS
				? LISTENER_BACKOFF_MAX_MS
				: l->backoff_ms * 2;
}

static void listener_subscribe(struct listener *l, int64_t now)
{
	const char *chans[] = {WIRE_CHAN_LOGIN, l->channel};

	l->bus = bus_open(l->cfg);
	if (!l->bus || bus_subscribe(l->bus, chans, 2) == -1 ||
	    client_ctx_watch(l->cx, bus_fd(l->bus)) == -1) {
		listener_down(l, now);
		return;
	}
	log_info("listening on %s and %s", chans[0], chans[1]);
	l->backoff_ms = LISTENER_BACKOFF_MIN_MS;
}

struct listener *listener_new(const struct config *cfg, struct client_ctx *cx,
			      const char *channel)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->cfg = cfg;
	l->cx = cx;
	l->channel = channel;
	l->backoff_ms = LISTENER_BACKOFF_MIN_MS;
	listener_subscribe(l, listener_now_ms());
	return l;
}

void listener_free(struct listener *l)
{
	if (!l)
		return;
	bus_close(l->bus);
	free(l);
}

/*
 * Hands on what has arrived: 0, 1 when more may be waiting already read
 * (where no poll shows it), or -1 when the connection ended. Requests for
 * this daemon's sessions go before the logins read with them: each login
 * costs Redis round trips, and in a storm a session's message would wait
 * behind hundreds (figure 5 of the benchmarks).
 */
static int listener_take(struct listener *l, listener_fn *fn, void *arg)
{
	int readable = client_ctx_watched_ready(l->cx);
	char *logins[LISTENER_BATCH_MAX];
	size_t lens[LISTENER_BATCH_MAX], nlogins = 0;
	char chan[128];
	char *msg;
	size_t len;
	int r = 1;

	for (int n = 0; n < LISTENER_BATCH_MAX; n++) {
		r = bus_next(l->bus, readable, chan, sizeof(chan), &msg, &len);
		if (r != 1)
			break;
		readable = 0; /* bus_next read once; a second could block */
		if (strcmp(chan, WIRE_CHAN_LOGIN) == 0) {
			logins[nlogins] = msg;
			lens[nlogins++] = len;
			continue;
		}
		fn(arg, msg, len);
		free(msg);
	}
	for (size_t i = 0; i < nlogins; i++) {
		fn(arg, logins[i], lens[i]);
		free(logins[i]);
	}
	return r;
}

unsigned long listener_pass(struct listener *l, listener_fn *fn, void *arg,
			    unsigned long max_wait_ms)
{
	int64_t now = listener_now_ms();
	int more = l->bus ? listener_take(l, fn, arg) : 0;

	if (more == -1) {
		log_warn("lost the Redis subscription; reconnecting");
		listener_down(l, now);
	}
	if (!l->bus && now >= l->retry_ms)
		listener_subscribe(l, now);
	if (l->bus)
		return more == 1 ? 0 : max_wait_ms;
	int64_t left = l->retry_ms - now;
	return left < 0 ? 0
	       : (unsigned long)left < max_wait_ms ? (unsigned long)left
						   : max_wait_ms;
}

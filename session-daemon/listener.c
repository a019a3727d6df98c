/* listener.c: the bus thread (listener.h). */
#include "listener.h"

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "bus.h"
#include "log.h"
#include "mailbox.h"
#include "wire.h"

#define LISTENER_BACKOFF_MAX_MS 2000

struct listener {
	const struct config *cfg;
	struct mailbox *mb;
	const char *channel;
	pthread_t thread;
	pthread_mutex_t lock; /* guards bus against listener_stop() */
	struct bus *bus;
	atomic_int stop;
};

static void listener_sleep_ms(struct listener *l, int ms)
{
	for (; ms > 0 && !atomic_load(&l->stop); ms -= 50)
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
}

static void listener_set_bus(struct listener *l, struct bus *b)
{
	pthread_mutex_lock(&l->lock);
	l->bus = b;
	pthread_mutex_unlock(&l->lock);
}

/* Reads until the connection ends. */
static void listener_pump(struct listener *l, struct bus *b)
{
	char chan[128];
	char *msg;
	size_t len;

	while (!atomic_load(&l->stop) &&
	       bus_next(b, chan, sizeof(chan), &msg, &len) == 0)
		if (mailbox_put(l->mb, msg, len) == -1)
			log_error("out of memory: request on %s dropped", chan);
}

static void *listener_main(void *arg)
{
	struct listener *l = arg;
	const char *chans[] = {WIRE_CHAN_LOGIN, l->channel};
	int backoff = 50;
	sigset_t set;

	/* Only the loop thread is woken by SIGUSR1. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (!atomic_load(&l->stop)) {
		struct bus *b = bus_open(l->cfg);
		if (b && bus_subscribe(b, chans, 2) == 0) {
			log_info("listening on %s and %s", chans[0], chans[1]);
			backoff = 50;
			listener_set_bus(l, b);
			listener_pump(l, b);
			listener_set_bus(l, NULL);
			if (!atomic_load(&l->stop))
				log_warn("lost the Redis subscription; "
					 "reconnecting");
		}
		bus_close(b);
		listener_sleep_ms(l, backoff);
		backoff = backoff * 2 > LISTENER_BACKOFF_MAX_MS
				  ? LISTENER_BACKOFF_MAX_MS
				  : backoff * 2;
	}
	return NULL;
}

struct listener *listener_start(const struct config *cfg, struct mailbox *mb,
				const char *channel)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->cfg = cfg;
	l->mb = mb;
	l->channel = channel;
	pthread_mutex_init(&l->lock, NULL);
	if (pthread_create(&l->thread, NULL, listener_main, l) != 0) {
		log_error("cannot start the bus thread");
		pthread_mutex_destroy(&l->lock);
		free(l);
		return NULL;
	}
	return l;
}

void listener_stop(struct listener *l)
{
	if (!l)
		return;
	atomic_store(&l->stop, 1);
	pthread_mutex_lock(&l->lock);
	bus_interrupt(l->bus);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

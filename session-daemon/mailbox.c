/* mailbox.c: bus thread to loop thread hand-off (mailbox.h). */
#include "mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

/* Re-signal every millisecond, for at most this long; after that the
 * loop's own select() timeout picks the item up. */
#define MAILBOX_KICK_NS 1000000L
#define MAILBOX_KICK_TRIES 2000

struct mailbox {
	pthread_mutex_t lock;
	pthread_cond_t taken;
	pthread_t loop;
	struct mailbox_item *head, **tail;
	unsigned long takes; /* bumped by every mailbox_take() */
	int waiting;         /* the loop is in, or about to enter, select() */
};

static void mailbox_on_signal(int sig)
{
	(void)sig; /* its only job is to interrupt select() */
}

struct mailbox *mailbox_new(void)
{
	struct sigaction sa = {.sa_handler = mailbox_on_signal,
			       .sa_flags = SA_RESTART};
	struct mailbox *mb = calloc(1, sizeof(*mb));

	if (!mb)
		return NULL;
	pthread_mutex_init(&mb->lock, NULL);
	pthread_cond_init(&mb->taken, NULL);
	mb->tail = &mb->head;
	mb->loop = pthread_self();
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) == -1) {
		log_error("sigaction SIGUSR1: %m");
		mailbox_free(mb);
		return NULL;
	}
	return mb;
}

void mailbox_item_free(struct mailbox_item *it)
{
	while (it) {
		struct mailbox_item *next = it->next;
		free(it->msg);
		free(it);
		it = next;
	}
}

void mailbox_free(struct mailbox *mb)
{
	if (!mb)
		return;
	mailbox_item_free(mb->head);
	pthread_cond_destroy(&mb->taken);
	pthread_mutex_destroy(&mb->lock);
	free(mb);
}

static void mailbox_deadline(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += MAILBOX_KICK_NS;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int mailbox_put(struct mailbox *mb, char *msg, size_t len)
{
	struct mailbox_item *it = malloc(sizeof(*it));
	struct timespec ts;

	if (!it) {
		free(msg);
		return -1;
	}
	*it = (struct mailbox_item){msg, len, NULL};
	pthread_mutex_lock(&mb->lock);
	*mb->tail = it;
	mb->tail = &it->next;
	/* Not about to sleep: the loop looks at the mailbox (under the lock,
	 * in mailbox_wait_begin) before it next waits, so the bus thread
	 * goes on reading and requests batch up. */
	if (!mb->waiting) {
		pthread_mutex_unlock(&mb->lock);
		return 0;
	}
	unsigned long seen = mb->takes;
	for (int i = 0; i < MAILBOX_KICK_TRIES && mb->takes == seen; i++) {
		if (mb->waiting)
			pthread_kill(mb->loop, SIGUSR1);
		mailbox_deadline(&ts);
		pthread_cond_timedwait(&mb->taken, &mb->lock, &ts);
	}
	pthread_mutex_unlock(&mb->lock);
	return 0;
}

struct mailbox_item *mailbox_take(struct mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	struct mailbox_item *items = mb->head;
	mb->head = NULL;
	mb->tail = &mb->head;
	mb->takes++;
	pthread_cond_broadcast(&mb->taken);
	pthread_mutex_unlock(&mb->lock);
	return items;
}

int mailbox_wait_begin(struct mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	int empty = mb->head == NULL;
	mb->waiting = empty;
	pthread_mutex_unlock(&mb->lock);
	return empty;
}

void mailbox_wait_end(struct mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mb->waiting = 0;
	pthread_mutex_unlock(&mb->lock);
}

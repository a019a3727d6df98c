/* smacks.c: XEP-0198 counters, copies and timing (smacks.h). */
#include "smacks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Drops the n oldest copies. */
static void smacks_drop(struct smacks *sm, uint32_t n)
{
	while (n-- > 0 && sm->head) {
		struct smacks_item *it = sm->head;
		sm->head = it->next;
		free(it);
		sm->queued--;
	}
	if (!sm->head)
		sm->tail = NULL;
}

/* The server says it has h stanzas: counts wrap at 2^32 (XEP-0198 4), so
 * the news is the difference, which cannot exceed what is queued. */
static int smacks_trim(struct smacks *sm, uint32_t h)
{
	uint32_t n = h - sm->out_acked;

	if (n > sm->queued)
		return -1;
	smacks_drop(sm, n);
	sm->out_acked = h;
	return 0;
}

void smacks_enable(struct smacks *sm)
{
	uint32_t h = 0;
	struct smacks_item *it;

	smacks_forget(sm);
	smacks_each(sm, it)
		it->h = ++h;
	sm->out = h;
	sm->out_acked = 0;
	sm->in = sm->in_acked = 0;
	sm->counting = 1;
	sm->asked = sm->ack_due = 0;
}

int smacks_enabled(struct smacks *sm, const char *id, const char *bound)
{
	/* The server counts what it sends from <enabled/> on. */
	sm->in = sm->in_acked = 0;
	if (!id || !bound)
		return 0;
	sm->id = strdup(id);
	sm->bound = strdup(bound);
	if (!sm->id || !sm->bound) {
		smacks_forget(sm);
		return -1;
	}
	return 0;
}

int smacks_adopt(struct smacks *sm, const char *id, const char *bound,
		 uint32_t in)
{
	smacks_off(sm);
	if (smacks_enabled(sm, id, bound) == -1)
		return -1;
	sm->in = sm->in_acked = in;
	sm->adopted = 1;
	return 0;
}

int smacks_had(struct smacks *sm, uint32_t h)
{
	return smacks_trim(sm, h);
}

int smacks_resumed(struct smacks *sm, uint32_t h)
{
	if (sm->adopted)
		sm->out = sm->out_acked = h;
	else if (smacks_trim(sm, h) == -1)
		return -1;
	sm->adopted = 0;
	sm->counting = 1;
	sm->asked = sm->ack_due = 0;
	return 0;
}

void smacks_forget(struct smacks *sm)
{
	sm->adopted = 0;
	free(sm->id);
	free(sm->bound);
	sm->id = sm->bound = NULL;
}

void smacks_off(struct smacks *sm)
{
	smacks_forget(sm);
	smacks_drop(sm, UINT32_MAX);
	sm->counting = sm->asked = sm->ack_due = 0;
}

void smacks_lost(struct smacks *sm)
{
	sm->counting = sm->asked = sm->ack_due = 0;
}

void smacks_clear(struct smacks *sm)
{
	smacks_off(sm);
	memset(sm, 0, sizeof(*sm));
}

int smacks_sent(struct smacks *sm, const char *data, size_t len)
{
	struct smacks_item *it;

	if (!sm->counting)
		return 0;
	if (sm->queued >= SMACKS_QUEUE_MAX ||
	    !(it = malloc(sizeof(*it) + len)))
		return -1;
	it->next = NULL;
	it->h = ++sm->out;
	it->len = len;
	memcpy(it->data, data, len);
	if (sm->tail)
		sm->tail->next = it;
	else
		sm->head = it;
	sm->tail = it;
	sm->queued++;
	return 0;
}

void smacks_received(struct smacks *sm)
{
	if (sm->counting)
		sm->in++;
}

void smacks_asked(struct smacks *sm)
{
	if (sm->counting)
		sm->ack_due = 1;
}

int smacks_acked(struct smacks *sm, uint32_t h)
{
	if (!sm->counting)
		return 0;
	sm->asked = 0;
	return smacks_trim(sm, h);
}

/* Whether the step that is timed by gap from last is due at now; else
 * lowers *wait_ms to when it will be. */
static int smacks_gap_passed(int64_t last, int gap, int64_t now, int *wait_ms)
{
	int64_t left = last + gap - now;

	if (left <= 0)
		return 1;
	if (left < *wait_ms)
		*wait_ms = (int)left;
	return 0;
}

int smacks_due(const struct smacks *sm, int64_t now, int *wait_ms)
{
	int due = 0;

	if (!sm->counting)
		return 0;
	if (sm->ack_due &&
	    ((uint32_t)(sm->in - sm->in_acked) >= SMACKS_ACK_BATCH ||
	     smacks_gap_passed(sm->ack_ms, SMACKS_ACK_GAP_MS, now, wait_ms)))
		due |= SMACKS_ANSWER;
	if (!sm->asked && sm->queued > 0 &&
	    (sm->queued >= SMACKS_ASK_BATCH ||
	     smacks_gap_passed(sm->ask_ms, SMACKS_ASK_GAP_MS, now, wait_ms)))
		due |= SMACKS_ASK;
	return due;
}

int smacks_waiting(const struct smacks *sm)
{
	return sm->counting && (sm->ack_due || (!sm->asked && sm->queued > 0));
}

uint32_t smacks_answer(struct smacks *sm, int64_t now)
{
	sm->ack_due = 0;
	sm->in_acked = sm->in;
	sm->ack_ms = now;
	return sm->in;
}

void smacks_ask(struct smacks *sm, int64_t now)
{
	sm->asked = 1;
	sm->ask_ms = now;
}

int smacks_parse_h(const char *text, uint32_t *h)
{
	char *end;
	unsigned long long v;

	if (!text || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -1;
	*h = (uint32_t)v;
	return 0;
}

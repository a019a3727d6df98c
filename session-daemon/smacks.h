/*
 * smacks.h: XEP-0198 stream management for the streams the daemon
 * negotiates itself: the two counters, a copy of every stanza the server
 * has not acknowledged yet (sent again when a stream is resumed or
 * replaced), and when to answer or ask for an acknowledgement. It builds
 * no XML and owns no socket; client.c sends what it says.
 *
 * Acknowledgements are batched. libstrophe asked for one after every
 * stanza it sent, and Prosody asks after every stanza it sends unless an
 * answer is outstanding, so answering at once cost an <r/> and an <a/>
 * per message each way (Prosody: 256 us per message to such a stream,
 * 128 to a client without). An answer waits up to SMACKS_ACK_GAP_MS, or
 * until SMACKS_ACK_BATCH stanzas are unanswered, well below Prosody's
 * queue of 500 (smacks_max_queue_size), past which it could no longer
 * resume the stream.
 */
#ifndef TALKPROXY_SMACKS_H
#define TALKPROXY_SMACKS_H

#include <stddef.h>
#include <stdint.h>

#define SMACKS_NS "urn:xmpp:sm:3"
#define SMACKS_ACK_GAP_MS 100
#define SMACKS_ACK_BATCH 64
/* Our own requests: the copies are only needed until the server has
 * them, so asking now and then keeps the queue short. */
#define SMACKS_ASK_GAP_MS 250
#define SMACKS_ASK_BATCH 64
/* A server that stops acknowledging would make the copies grow without
 * end: past this many the stream is treated as broken. */
#define SMACKS_QUEUE_MAX 4096

/* What smacks_due() says to send now. */
enum { SMACKS_ANSWER = 1, SMACKS_ASK = 2 };

struct smacks_item {
	struct smacks_item *next;
	uint32_t h;  /* its number in the count of stanzas sent */
	size_t len;
	char data[];
};

struct smacks {
	char *id;           /* resumption id from <enabled/>; NULL: none */
	char *bound;        /* the full JID bound to the stream to resume */
	uint32_t in;        /* stanzas handled from the server */
	uint32_t in_acked;  /* in when we last answered */
	uint32_t out;       /* stanzas sent since <enable/> */
	uint32_t out_acked; /* the server's last count of them */
	int counting;       /* this stream is managed (enable/resume sent) */
	int adopted;        /* left by another process: our count unknown */
	int ack_due;        /* the server asked and was not answered yet */
	int asked;          /* our request awaits its answer */
	int64_t ack_ms, ask_ms; /* when we last answered, asked */
	struct smacks_item *head, *tail;
	size_t queued;
};

/* <enable/> sent on a fresh stream: counting starts; copies left from a
 * stream that could not be resumed are numbered anew, for the caller to
 * send again (smacks_each). */
void smacks_enable(struct smacks *sm);
/* <enabled/> arrived; id NULL when the server will not resume it. */
int smacks_enabled(struct smacks *sm, const char *id, const char *bound);
/* A stream another process left, to be resumed: id and bound as its
 * <enabled/> gave them, in the count of the server's stanzas it handled.
 * That process's copies are gone, so <resumed/> is taken at its word.
 * -1 on allocation failure. */
int smacks_adopt(struct smacks *sm, const char *id, const char *bound,
		 uint32_t in);
/* <resumed h/> arrived: drops what the server had, the rest is to be sent
 * again. -1 when h counts more than we sent. */
int smacks_resumed(struct smacks *sm, uint32_t h);
/* The server says it had h of them (<failed h/>): drops those. -1 when h
 * counts more than we sent. */
int smacks_had(struct smacks *sm, uint32_t h);
/* The stream cannot be resumed (<failed/>, or enabling failed). */
void smacks_forget(struct smacks *sm);
/* No stream management on this stream: counting stops, copies dropped. */
void smacks_off(struct smacks *sm);
/* The stream went down: counting stops, what resumption needs stays. */
void smacks_lost(struct smacks *sm);
/* Everything freed (the session ends). */
void smacks_clear(struct smacks *sm);

/* A stanza was sent: keeps a copy. -1 on allocation failure or past
 * SMACKS_QUEUE_MAX (the caller drops the stream). 0 when not counting. */
int smacks_sent(struct smacks *sm, const char *data, size_t len);
/* A stanza arrived from the server. */
void smacks_received(struct smacks *sm);
/* The server asked (<r/>). */
void smacks_asked(struct smacks *sm);
/* The server answered (<a h/>): drops the copies it has. -1 when h counts
 * more than we sent. */
int smacks_acked(struct smacks *sm, uint32_t h);

/* What to send at now (SMACKS_ANSWER, SMACKS_ASK), lowering *wait_ms to
 * when something will be due; 0 with nothing to do. */
int smacks_due(const struct smacks *sm, int64_t now, int *wait_ms);
/* Whether smacks_due() can ever say something without new input. */
int smacks_waiting(const struct smacks *sm);
/* An answer is being sent: returns the count to put in it. */
uint32_t smacks_answer(struct smacks *sm, int64_t now);
/* A request is being sent. */
void smacks_ask(struct smacks *sm, int64_t now);
/* Parses an h attribute (decimal, below 2^32); -1 when malformed. */
int smacks_parse_h(const char *text, uint32_t *h);

/* The copies in order, for sending again after a resumption. */
#define smacks_each(sm, it) for ((it) = (sm)->head; (it); (it) = (it)->next)

#endif

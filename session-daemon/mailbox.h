/*
 * mailbox.h: hands requests from the bus thread to the loop thread, and
 * wakes the loop thread out of libstrophe's select() when one arrives.
 *
 * libstrophe cannot watch a descriptor of ours, so the wake-up is a signal
 * (SIGUSR1, SA_RESTART: select() is never restarted, everything else is)
 * sent to the loop thread. A signal that lands after the loop checked the
 * mailbox but before select() began would be lost until select() times
 * out, so mailbox_put() keeps signalling, a millisecond apart, until the
 * loop has taken the item. The latency this adds is measured in bench/.
 */
#ifndef TALKPROXY_MAILBOX_H
#define TALKPROXY_MAILBOX_H

#include <stddef.h>

struct mailbox;

struct mailbox_item {
	char *msg; /* owned by the item */
	size_t len;
	struct mailbox_item *next;
};

/* Call from the loop thread, which is the one woken. NULL on failure. */
struct mailbox *mailbox_new(void);
/* Frees the mailbox and any items still in it. */
void mailbox_free(struct mailbox *mb);

/* Bus thread: appends msg (ownership taken) and wakes the loop. 0 or -1. */
int mailbox_put(struct mailbox *mb, char *msg, size_t len);

/* Loop thread: takes every waiting item (a list the caller frees with
 * mailbox_item_free()), or NULL. */
struct mailbox_item *mailbox_take(struct mailbox *mb);
void mailbox_item_free(struct mailbox_item *it);

/*
 * Loop thread, around its blocking wait: returns 1 when the loop may block
 * (nothing is waiting), 0 when it should take items first. Every call that
 * returned 1 is followed by mailbox_wait_end() once the wait is over.
 */
int mailbox_wait_begin(struct mailbox *mb);
void mailbox_wait_end(struct mailbox *mb);

#endif

/* park.c: requests waiting for a stream to catch up (park.h). */
#include "park.h"

#include <stdlib.h>
#include <string.h>

struct park_item {
	struct park_item *next;
	void *owner;
	int64_t deadline_ms;
	size_t len;
	char msg[];
};

struct park {
	struct park_item *head, **tail;
	struct park_item *walk; /* what park_run has yet to look at */
};

struct park *park_new(void)
{
	struct park *p = calloc(1, sizeof(*p));

	if (p)
		p->tail = &p->head;
	return p;
}

static void park_items_free(struct park_item *it)
{
	for (struct park_item *next; it; it = next) {
		next = it->next;
		free(it);
	}
}

void park_free(struct park *p)
{
	if (!p)
		return;
	park_items_free(p->head);
	park_items_free(p->walk);
	free(p);
}

int park_put(struct park *p, void *owner, int64_t deadline_ms,
	     const char *msg, size_t len)
{
	struct park_item *it = malloc(sizeof(*it) + len + 1);

	if (!it)
		return -1;
	*it = (struct park_item){NULL, owner, deadline_ms, len};
	memcpy(it->msg, msg, len);
	it->msg[len] = '\0';
	*p->tail = it;
	p->tail = &it->next;
	return 0;
}

static void park_forget_in(struct park_item *it, const void *owner)
{
	for (; it; it = it->next)
		if (it->owner == owner)
			it->owner = NULL;
}

void park_forget(struct park *p, const void *owner)
{
	/* take() may end an owner while park_run holds the rest. */
	park_forget_in(p->head, owner);
	park_forget_in(p->walk, owner);
}

int park_any(const struct park *p)
{
	return p->head || p->walk;
}

void park_run(struct park *p, int64_t now, int (*ready)(void *, void *),
	      void (*take)(void *, void *, const char *, size_t), void *arg)
{
	/* Detached first: take() may park again, onto the list's new tail,
	 * and must not meet the items still to be walked. */
	p->walk = p->head;
	p->head = NULL;
	p->tail = &p->head;
	while (p->walk) {
		struct park_item *it = p->walk;
		p->walk = it->next;
		if (it->owner && it->deadline_ms >= now && !ready(arg, it->owner)) {
			it->next = NULL;
			*p->tail = it;
			p->tail = &it->next;
			continue;
		}
		take(arg, it->owner, it->msg, it->len);
		free(it);
	}
}

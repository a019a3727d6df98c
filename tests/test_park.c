/*
 * test_park.c: requests waiting for their stream (park.c): order kept per
 * owner, owners that are not ready hold only their own items, expired and
 * forgotten items handed on, items parked again during a run, and an
 * owner ended from inside a run.
 */
#include "park.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

struct owner {
	int ready;
	int repark; /* take() parks the item again this many times */
};

struct run {
	struct park *p;
	char log[512];  /* "owner:msg " per take, owner '-' when forgotten */
	struct owner *owners;
	struct owner *end_on_take; /* forgotten when its first item is taken */
};

static void is_str(const char *got, const char *want, const char *what)
{
	ok(strcmp(got, want) == 0, "%s", what);
	if (strcmp(got, want) != 0)
		printf("#   got \"%s\", want \"%s\"\n", got, want);
}

static int ready(void *arg, void *owner)
{
	(void)arg;
	return ((struct owner *)owner)->ready;
}

static void take(void *arg, void *owner, const char *msg, size_t len)
{
	struct run *r = arg;
	struct owner *o = owner;
	size_t used = strlen(r->log);

	snprintf(r->log + used, sizeof(r->log) - used, "%c:%.*s ",
		 o ? (char)('a' + (o - r->owners)) : '-', (int)len, msg);
	if (o && o == r->end_on_take) {
		park_forget(r->p, o);
		r->end_on_take = NULL;
	}
	if (o && o->repark > 0) {
		o->repark--;
		o->ready = 0;
		park_put(r->p, o, 100, msg, len);
	}
}

static void put(struct park *p, struct owner *o, int64_t deadline,
		const char *msg)
{
	ok(park_put(p, o, deadline, msg, strlen(msg)) == 0, "parked %s", msg);
}

static void test_order(void)
{
	struct owner o[2] = {{0, 0}, {1, 0}};
	struct run r = {.p = park_new(), .owners = o};

	ok(r.p && !park_any(r.p), "a new park holds nothing");
	put(r.p, &o[0], 100, "1");
	put(r.p, &o[1], 100, "2");
	put(r.p, &o[0], 100, "3");
	put(r.p, &o[1], 100, "4");
	park_run(r.p, 50, ready, take, &r);
	is_str(r.log, "b:2 b:4 ", "a ready owner's items go, in order; the other's stay");
	ok(park_any(r.p), "the waiting owner's items are still parked");
	r.log[0] = '\0';
	o[0].ready = 1;
	park_run(r.p, 50, ready, take, &r);
	is_str(r.log, "a:1 a:3 ", "once ready its items go in the order they came");
	ok(!park_any(r.p), "and the park is empty");
	park_free(r.p);
}

static void test_expired_and_forgotten(void)
{
	struct owner o[2] = {{0, 0}, {0, 0}};
	struct run r = {.p = park_new(), .owners = o};

	put(r.p, &o[0], 10, "late");
	put(r.p, &o[0], 100, "fresh");
	put(r.p, &o[1], 100, "orphan");
	park_forget(r.p, &o[1]);
	park_run(r.p, 50, ready, take, &r);
	is_str(r.log, "a:late -:orphan ",
	       "an expired item and a forgotten owner's go although not ready");
	r.log[0] = '\0';
	park_run(r.p, 200, ready, take, &r);
	is_str(r.log, "a:fresh ", "an item goes once its deadline has passed");
	park_free(r.p);
}

static void test_parked_again(void)
{
	struct owner o[1] = {{1, 1}};
	struct run r = {.p = park_new(), .owners = o};

	put(r.p, &o[0], 100, "x");
	put(r.p, &o[0], 100, "y");
	park_run(r.p, 50, ready, take, &r);
	is_str(r.log, "a:x ", "an owner that stops being ready holds its later items");
	r.log[0] = '\0';
	o[0].ready = 1;
	park_run(r.p, 50, ready, take, &r);
	is_str(r.log, "a:x a:y ", "an item parked again during a run stays ahead of its "
	       "owner's next");
	park_free(r.p);
}

static void test_ended_during_run(void)
{
	struct owner o[2] = {{1, 0}, {0, 0}};
	struct run r = {.p = park_new(), .owners = o, .end_on_take = &o[1]};

	/* o[1] is ended while its second item is still to be walked. */
	o[1].ready = 1;
	put(r.p, &o[1], 100, "p");
	put(r.p, &o[0], 100, "q");
	put(r.p, &o[1], 100, "r");
	park_run(r.p, 50, ready, take, &r);
	is_str(r.log, "b:p a:q -:r ",
	       "an owner ended inside a run has its remaining items handed on ownerless");
	put(r.p, &o[0], 100, "left");
	o[0].ready = 0;
	park_free(r.p); /* with an item left: LeakSanitizer checks it */
	park_free(NULL);
	ok(1, "freeing a park with items, and NULL, returns");
}

int main(void)
{
	test_order();
	test_expired_and_forgotten();
	test_parked_again();
	test_ended_during_run();
	return tap_done();
}

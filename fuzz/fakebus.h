/*
 * fakebus.h: bus.h without Redis, for the harnesses that drive daemon code
 * (record.c, inbox.c). Linked instead of common/bus.c: it defines every
 * bus.h function, so the archive's bus.o is never pulled in (a new bus.h
 * function used by that code and missing here shows as a duplicate-symbol
 * link error). Values live in memory in one struct bus.
 */
#ifndef TALKPROXY_FAKEBUS_H
#define TALKPROXY_FAKEBUS_H

#include <stddef.h>

#include "bus.h"

/* A new, empty bus (bus_open() of the fake ignores its config too). */
struct bus *fakebus_new(void);
/* Forgets every key and queue item: the next input starts clean. */
void fakebus_reset(struct bus *b);
/* Stores len bytes under key as a Redis SET would. 0, or -1. */
int fakebus_put(struct bus *b, const char *key, const void *val, size_t len);
/* Queue items added since the last reset. */
unsigned long fakebus_queued(const struct bus *b);

struct config;
struct inbox_env;
/*
 * What every harness driving daemon code starts with: default config,
 * errors-only logging to /dev/null, libsodium, and an inbox environment on
 * a fake bus (no push thread). Aborts when any of it fails.
 */
void fakebus_harness_init(const char *name, struct config *cfg,
			  struct inbox_env *env);

#endif

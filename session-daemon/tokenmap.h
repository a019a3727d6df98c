/*
 * tokenmap.h: token hash -> session, so that a request finds its session
 * in constant time however many sessions a daemon holds (a walk over
 * 900 sessions took longer than the rest of a message request).
 */
#ifndef TALKPROXY_TOKENMAP_H
#define TALKPROXY_TOKENMAP_H

#include "wire.h"

struct tokenmap;

struct tokenmap *tokenmap_new(void);
void tokenmap_free(struct tokenmap *m);
/* Maps th (a token hash, WIRE_TOKEN_HASH_HEX hex digits) to value,
 * replacing what it mapped to. 0, or -1 when out of memory. */
int tokenmap_put(struct tokenmap *m, const char *th, void *value);
/* Forgets th if it maps to value (another holder's mapping stays). */
void tokenmap_del(struct tokenmap *m, const char *th, const void *value);
/* What th maps to, or NULL. */
void *tokenmap_get(const struct tokenmap *m, const char *th);

#endif

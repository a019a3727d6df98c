/*
 * test_tokenmap.c: the token hash -> session map, through put, get and
 * del, with as many keys as a full daemon holds so that buckets chain.
 */
#include "tokenmap.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

#define MANY 20000

static void hex_key(char out[WIRE_TOKEN_HASH_HEX + 1], unsigned n)
{
	/* Not digests: consecutive numbers share prefixes and collide. */
	snprintf(out, WIRE_TOKEN_HASH_HEX + 1, "%08x%056x", n % 7, n);
}

static void test_basics(void)
{
	struct tokenmap *m = tokenmap_new();
	int a, b;

	ok(m != NULL, "a new map is made");
	ok(tokenmap_get(m, "00") == NULL, "an empty map finds nothing");
	ok(tokenmap_put(m, "00", &a) == 0 && tokenmap_get(m, "00") == &a,
	   "a key put is found with its value");
	ok(tokenmap_put(m, "00", &b) == 0 && tokenmap_get(m, "00") == &b,
	   "putting a key again replaces its value");
	tokenmap_del(m, "00", &a);
	ok(tokenmap_get(m, "00") == &b,
	   "deleting with a value the key no longer maps to keeps it");
	tokenmap_del(m, "00", &b);
	ok(tokenmap_get(m, "00") == NULL, "deleting with its value removes it");
	tokenmap_del(m, "00", &b);
	ok(tokenmap_get(m, "00") == NULL, "deleting an absent key is harmless");
	char long_key[WIRE_TOKEN_HASH_HEX + 2];
	memset(long_key, 'a', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	ok(tokenmap_put(m, long_key, &a) == -1 && tokenmap_get(m, long_key) == NULL,
	   "a key longer than a token hash is refused");
	tokenmap_free(m);
}

static void test_many(void)
{
	static int values[MANY];
	struct tokenmap *m = tokenmap_new();
	char key[WIRE_TOKEN_HASH_HEX + 1];
	int bad = 0;

	for (unsigned i = 0; i < MANY; i++) {
		hex_key(key, i);
		bad += tokenmap_put(m, key, &values[i]) != 0;
	}
	for (unsigned i = 0; i < MANY; i++) {
		hex_key(key, i);
		bad += tokenmap_get(m, key) != &values[i];
	}
	ok(bad == 0, "%d keys are each found with their own value", MANY);
	for (unsigned i = 0; i < MANY; i += 2) {
		hex_key(key, i);
		tokenmap_del(m, key, &values[i]);
	}
	bad = 0;
	for (unsigned i = 0; i < MANY; i++) {
		hex_key(key, i);
		bad += tokenmap_get(m, key) != (i % 2 ? &values[i] : NULL);
	}
	ok(bad == 0, "deleting every other key leaves the rest in their chains");
	tokenmap_free(m); /* with entries left: LeakSanitizer checks the rest */
	tokenmap_free(NULL);
	ok(1, "freeing a map with entries, and NULL, returns");
}

int main(void)
{
	test_basics();
	test_many();
	return tap_done();
}

/* tokenmap.c: a chained hash table keyed by token hash (tokenmap.h). */
#include "tokenmap.h"

#include <stdlib.h>
#include <string.h>

/* Fixed: a daemon holds at most a few thousand sessions of a few tokens. */
#define TOKENMAP_BUCKETS 8192

struct tokenmap_entry {
	struct tokenmap_entry *next;
	void *value;
	char th[WIRE_TOKEN_HASH_HEX + 1];
};

struct tokenmap {
	struct tokenmap_entry *bucket[TOKENMAP_BUCKETS];
};

/* Token hashes are digests: their first hex digits are spread evenly. */
static size_t tokenmap_index(const char *th)
{
	size_t h = 0;

	for (int i = 0; i < 8 && th[i]; i++)
		h = h * 31 + (unsigned char)th[i];
	return h & (TOKENMAP_BUCKETS - 1);
}

struct tokenmap *tokenmap_new(void)
{
	return calloc(1, sizeof(struct tokenmap));
}

void tokenmap_free(struct tokenmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < TOKENMAP_BUCKETS; i++)
		while (m->bucket[i]) {
			struct tokenmap_entry *e = m->bucket[i];
			m->bucket[i] = e->next;
			free(e);
		}
	free(m);
}

static struct tokenmap_entry **tokenmap_find(const struct tokenmap *m,
					     const char *th)
{
	struct tokenmap_entry **p =
		(struct tokenmap_entry **)&m->bucket[tokenmap_index(th)];

	while (*p && strcmp((*p)->th, th) != 0)
		p = &(*p)->next;
	return p;
}

int tokenmap_put(struct tokenmap *m, const char *th, void *value)
{
	struct tokenmap_entry **p = tokenmap_find(m, th);

	if (!*p) {
		if (strlen(th) > WIRE_TOKEN_HASH_HEX ||
		    !(*p = calloc(1, sizeof(**p))))
			return -1;
		memcpy((*p)->th, th, strlen(th) + 1);
	}
	(*p)->value = value;
	return 0;
}

void tokenmap_del(struct tokenmap *m, const char *th, const void *value)
{
	struct tokenmap_entry **p = tokenmap_find(m, th);
	struct tokenmap_entry *e = *p;

	if (e && e->value == value) {
		*p = e->next;
		free(e);
	}
}

void *tokenmap_get(const struct tokenmap *m, const char *th)
{
	struct tokenmap_entry *e = *tokenmap_find(m, th);

	return e ? e->value : NULL;
}

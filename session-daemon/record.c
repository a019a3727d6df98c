/* record.c: sealed session records and adopting orphans (record.h). */
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"

#define RECORD_KEY_MAX (sizeof(WIRE_KEY_SESSION_PREFIX) + WIRE_ID_HEX)

int record_save(struct bus *b, const uint8_t master[SEAL_KEY_BYTES],
		const char *sid, const json_t *o)
{
	char key[RECORD_KEY_MAX];
	char *text = json_dumps(o, JSON_COMPACT);
	uint8_t *blob = NULL;
	size_t len = text ? strlen(text) : 0;
	int r = -1;

	bus_key(key, sizeof(key), WIRE_KEY_SESSION_PREFIX, sid);
	if (text && (blob = malloc(len + SEAL_OVERHEAD))) {
		seal_box(blob, (const uint8_t *)text, len, key, master);
		r = bus_set_ahead(b, key, blob, len + SEAL_OVERHEAD, 0);
	}
	if (r == -1)
		log_error("session %s: record not saved", sid);
	if (text)
		seal_wipe(text, len); /* it holds the password */
	free(text);
	free(blob);
	return r;
}

json_t *record_load(struct bus *b, const uint8_t master[SEAL_KEY_BYTES],
		    const char *sid)
{
	char key[RECORD_KEY_MAX];
	void *blob = NULL;
	size_t len = 0;
	json_t *o = NULL;

	bus_key(key, sizeof(key), WIRE_KEY_SESSION_PREFIX, sid);
	if (bus_get_bin(b, key, &blob, &len) != 1)
		return NULL;
	char *text = len >= SEAL_OVERHEAD ? malloc(len - SEAL_OVERHEAD + 1)
					  : NULL;
	if (text && seal_open((uint8_t *)text, blob, len, key, master) == 0) {
		text[len - SEAL_OVERHEAD] = '\0';
		o = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
		seal_wipe(text, len - SEAL_OVERHEAD);
	}
	if (!o)
		log_error("session %s: record does not open with this master "
			  "key (forged, moved or another key)",
			  sid);
	free(text);
	free(blob);
	return o;
}

int record_delete(struct bus *b, const char *sid)
{
	char key[RECORD_KEY_MAX];

	return bus_del(b, bus_key(key, sizeof(key), WIRE_KEY_SESSION_PREFIX, sid));
}

int record_owner_alive(struct bus *b, const char *owner)
{
	char key[WIRE_DAEMON_ID_MAX + 32];
	char val[8];

	bus_key(key, sizeof(key), WIRE_KEY_ALIVE_PREFIX, owner);
	if (bus_get(b, key, val, sizeof(val)) != 1)
		return 0;
	bus_key(key, sizeof(key), WIRE_CHAN_DAEMON_PREFIX, owner);
	return bus_numsub(b, key) > 0;
}

/* Owners whose liveness one scan has looked up: a few daemons own
 * thousands of records, and asking twice per record was most of the
 * Redis traffic of an idle machine. */
#define RECORD_OWNERS_SEEN 32

struct record_owner {
	char id[WIRE_DAEMON_ID_MAX + 1];
	int alive;
};

struct record_scan {
	struct bus *b;
	const char *self;
	void (*fn)(void *ud, const char *sid);
	void *ud;
	long adopted;
	int failed;
	struct record_owner owners[RECORD_OWNERS_SEEN];
	size_t nowners;
};

static int record_alive_cached(struct record_scan *sc, const char *owner)
{
	for (size_t i = 0; i < sc->nowners; i++)
		if (strcmp(sc->owners[i].id, owner) == 0)
			return sc->owners[i].alive;
	int alive = record_owner_alive(sc->b, owner);
	if (sc->nowners < RECORD_OWNERS_SEEN) {
		struct record_owner *o = &sc->owners[sc->nowners++];
		snprintf(o->id, sizeof(o->id), "%s", owner);
		o->alive = alive;
	}
	return alive;
}

static void record_consider(void *ud, const char *key)
{
	struct record_scan *sc = ud;
	const char *sid = key + strlen(WIRE_KEY_SESSION_PREFIX);
	char okey[sizeof(WIRE_KEY_OWNER_PREFIX) + WIRE_ID_HEX];
	char owner[WIRE_DAEMON_ID_MAX + 1];
	int have;

	if (strlen(sid) != WIRE_ID_HEX)
		return;
	bus_key(okey, sizeof(okey), WIRE_KEY_OWNER_PREFIX, sid);
	if ((have = bus_get(sc->b, okey, owner, sizeof(owner))) == -1) {
		sc->failed = 1;
		return;
	}
	if (!have)
		owner[0] = '\0';
	/* Ours already: a restart under a configured daemon id. The caller
	 * skips sessions it holds. */
	if (strcmp(owner, sc->self) == 0) {
		sc->fn(sc->ud, sid);
		return;
	}
	if (owner[0] && record_alive_cached(sc, owner))
		return;
	if (bus_adopt(sc->b, okey, owner, sc->self) == 1) {
		sc->adopted++;
		sc->fn(sc->ud, sid);
	}
}

long record_adopt_step(struct bus *b, const char *self, long long *cursor,
		       void (*fn)(void *ud, const char *sid), void *ud)
{
	struct record_scan sc = {.b = b, .self = self, .fn = fn, .ud = ud};
	long long next = bus_scan(b, *cursor, WIRE_KEY_SESSION_PREFIX "*",
				  record_consider, &sc);

	if (next == -1 || sc.failed) {
		*cursor = 0; /* start over next time */
		return -1;
	}
	*cursor = next;
	return sc.adopted;
}

long record_adopt_orphans(struct bus *b, const char *self,
			  void (*fn)(void *ud, const char *sid), void *ud)
{
	long long cursor = 0;
	long adopted = 0, n;

	do {
		if ((n = record_adopt_step(b, self, &cursor, fn, ud)) == -1)
			return -1;
		adopted += n;
	} while (cursor > 0);
	return adopted;
}

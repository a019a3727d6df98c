/*
 * record.h: session records in Redis, sealed with the master key
 * (XChaCha20-Poly1305, the record's Redis key as associated data, so a
 * blob copied under another session's key does not open), and the search
 * for records whose owning daemon is gone. What a record holds is the
 * session module's business: here it is a JSON object.
 */
#ifndef TALKPROXY_RECORD_H
#define TALKPROXY_RECORD_H

#include <jansson.h>
#include <stdint.h>

#include "seal.h"
#include "wire.h"

struct bus;

/* Seals o under tp:session:<sid>, sent ahead (bus.h): written with the
 * loop pass's other commands. Returns 0, or -1 (logged). */
int record_save(struct bus *b, const uint8_t master[SEAL_KEY_BYTES],
		const char *sid, const json_t *o);
/* Opens tp:session:<sid>: a new object, or NULL (logged) when it is
 * absent, forged, sealed for another key or malformed. */
json_t *record_load(struct bus *b, const uint8_t master[SEAL_KEY_BYTES],
		    const char *sid);
int record_delete(struct bus *b, const char *sid);

/*
 * 1 when daemon owner is alive: it holds its lease and listens on its
 * channel (a killed daemon's subscription ends with its connection, at
 * once, while its lease lingers).
 */
int record_owner_alive(struct bus *b, const char *owner);

/*
 * Finds every session whose owner is gone (no owner, or one that neither
 * holds its lease nor listens on its channel), makes self its owner
 * (compare-and-set: of two daemons adopting at once, one wins) and calls
 * fn for each won, and for each already owned by self (fn skips those it
 * holds). Returns how many changed owner, or -1 on a Redis error.
 */
long record_adopt_orphans(struct bus *b, const char *self,
			  void (*fn)(void *ud, const char *sid), void *ud);
/*
 * The same, one SCAN step at a time: from *cursor (0 starts a pass over
 * every record), which is 0 again when the pass ended. A pass over
 * thousands of records in one go held the loop for a few hundred ms.
 */
long record_adopt_step(struct bus *b, const char *self, long long *cursor,
		       void (*fn)(void *ud, const char *sid), void *ud);

#endif

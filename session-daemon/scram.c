/* scram.c: the client side of SASL SCRAM-SHA-1, -256 and -512 (scram.h). */
#include "scram.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "seal.h"

/* Random bytes in a fresh client nonce: 32 characters of base64. */
#define SCRAM_NONCE_BYTES 24
/* The longest server message taken, decoded: a server-first is a nonce, a
 * salt and a count, far shorter. Longer ones are refused unread. */
#define SCRAM_MAX_MSG 1024
#define SCRAM_MAX_B64 (4 * ((SCRAM_MAX_MSG + 2) / 3))
/*
 * The iteration counts taken. Fewer than RFC 7677's minimum of 4096 would
 * be a downgrade: whoever answers for the server could make a captured
 * proof cheaper to test password guesses against. More than a million
 * would let it make each login burn seconds of the daemon's CPU, which
 * every session shares.
 */
#define SCRAM_MIN_ITER 4096
#define SCRAM_MAX_ITER 1000000

/* client-final-without-proof up to the nonce: c= is base64("n,,"). */
static const char scram_cbind[] = "c=biws,r=";

enum scram_state { SCRAM_STARTED, SCRAM_FINAL_SENT, SCRAM_OVER };

struct scram {
	const EVP_MD *md;
	size_t hlen;
	enum scram_state state;
	char *password; /* until client-final is built */
	size_t password_len;
	char *bare; /* client-first-bare: "n=<user>,r=<client nonce>" */
	size_t bare_len, cnonce_len; /* the client nonce ends bare */
	unsigned char server_sig[EVP_MAX_MD_SIZE]; /* what v= must carry */
};

/* A value in a server message, pointing into its decoded text. */
struct scram_attr {
	const char *v;
	size_t len;
	int seen;
};

struct scram_challenge {
	struct scram_attr r, s, i;
};

/* The mechanisms, strongest first: the order scram_pick() prefers. */
static const struct scram_mech {
	const char *name;
	const EVP_MD *(*md)(void);
} scram_mechs[] = {
	{SCRAM_SHA512, EVP_sha512},
	{SCRAM_SHA256, EVP_sha256},
	{SCRAM_SHA1, EVP_sha1},
};
#define SCRAM_NMECHS (sizeof(scram_mechs) / sizeof(scram_mechs[0]))

static const struct scram_mech *scram_mech(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < SCRAM_NMECHS; i++)
		if (strcmp(scram_mechs[i].name, name) == 0)
			return &scram_mechs[i];
	return NULL;
}

int scram_supports(const char *mech)
{
	return scram_mech(mech) != NULL;
}

const char *scram_pick(const char *const *offered, size_t n)
{
	for (size_t m = 0; m < SCRAM_NMECHS; m++)
		for (size_t i = 0; i < n; i++)
			if (offered[i] &&
			    strcmp(offered[i], scram_mechs[m].name) == 0)
				return scram_mechs[m].name;
	return NULL;
}

static void scram_free_text(char *p, size_t len)
{
	if (p) {
		seal_wipe(p, len);
		free(p);
	}
}

static int scram_too_long(const char *text)
{
	return strnlen(text, SCRAM_MAX_TEXT + 1) > SCRAM_MAX_TEXT;
}

/* RFC 5802 7 "printable": visible ASCII but ','. Nonces are made of it. */
static int scram_printable(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x21 || c > 0x7e || c == ',')
			return 0;
	}
	return len > 0;
}

/* A fresh client nonce (malloc'd), or NULL. Base64 has no ','. */
static char *scram_fresh_nonce(void)
{
	unsigned char raw[SCRAM_NONCE_BYTES];
	char *b64;

	seal_random(raw, sizeof(raw));
	b64 = seal_base64(raw, sizeof(raw), SEAL_B64);
	seal_wipe(raw, sizeof(raw));
	return b64;
}

/* "n=<user>,r=<nonce>" (malloc'd, length in *len), with ',' and '=' in the
 * user name escaped as RFC 5802 5.1 asks; or NULL. */
static char *scram_bare(const char *user, const char *nonce, size_t *len)
{
	size_t ulen = strlen(user), nlen = strlen(nonce), n = 2 + 3 + nlen;
	char *bare, *p;

	for (size_t i = 0; i < ulen; i++)
		n += user[i] == ',' || user[i] == '=' ? 3 : 1;
	if (!(bare = malloc(n + 1)))
		return NULL;
	p = bare;
	*p++ = 'n';
	*p++ = '=';
	for (size_t i = 0; i < ulen; i++) {
		if (user[i] == ',' || user[i] == '=') {
			memcpy(p, user[i] == ',' ? "=2C" : "=3D", 3);
			p += 3;
		} else {
			*p++ = user[i];
		}
	}
	memcpy(p, ",r=", 3);
	memcpy(p + 3, nonce, nlen + 1);
	*len = n;
	return bare;
}

static int scram_args_ok(const char *user, const char *password,
			 const char *nonce)
{
	if (!user || !*user || scram_too_long(user) || !password ||
	    scram_too_long(password))
		return 0;
	return !nonce || (!scram_too_long(nonce) &&
			  scram_printable(nonce, strlen(nonce)));
}

/* Fills s for user, password and nonce; 0, or -1 when memory runs out
 * (or libcrypto lacks the digest). */
static int scram_fill(struct scram *s, const struct scram_mech *m,
		      const char *user, const char *password, const char *nonce)
{
	int hlen;

	s->md = m->md();
	hlen = s->md ? EVP_MD_get_size(s->md) : -1;
	if (hlen <= 0 || hlen > EVP_MAX_MD_SIZE)
		return -1;
	s->hlen = (size_t)hlen;
	s->state = SCRAM_STARTED;
	s->password_len = strlen(password);
	if (!(s->password = malloc(s->password_len + 1)))
		return -1;
	memcpy(s->password, password, s->password_len + 1);
	s->cnonce_len = strlen(nonce);
	s->bare = scram_bare(user, nonce, &s->bare_len);
	return s->bare ? 0 : -1;
}

struct scram *scram_new(const char *mech, const char *user,
			const char *password, const char *nonce)
{
	const struct scram_mech *m = scram_mech(mech);
	struct scram *s;
	char *fresh = NULL;

	if (!m || !scram_args_ok(user, password, nonce))
		return NULL;
	if (!nonce && !(nonce = fresh = scram_fresh_nonce()))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s && scram_fill(s, m, user, password, nonce) != 0) {
		scram_free(s);
		s = NULL;
	}
	free(fresh);
	return s;
}

char *scram_client_first(struct scram *s)
{
	char *msg, *b64;

	if (!s || !(msg = malloc(3 + s->bare_len + 1)))
		return NULL;
	/* gs2 header: no channel binding, no authorization identity. */
	memcpy(msg, "n,,", 3);
	memcpy(msg + 3, s->bare, s->bare_len + 1);
	b64 = seal_base64(msg, 3 + s->bare_len, SEAL_B64);
	free(msg);
	return b64;
}

/*
 * Decodes a server message into buf (SCRAM_MAX_MSG + 1 bytes) as a string.
 * Its length, or -1 when b64 is missing, too long, not padded base64, or
 * decodes to nothing or to text with a NUL in it.
 */
static long scram_decode(const char *b64, char *buf)
{
	long n;

	if (!b64 || strnlen(b64, SCRAM_MAX_B64 + 1) > SCRAM_MAX_B64)
		return -1;
	n = seal_unbase64((uint8_t *)buf, SCRAM_MAX_MSG, b64, SEAL_B64);
	if (n <= 0 || memchr(buf, '\0', (size_t)n))
		return -1;
	buf[n] = '\0';
	return n;
}

static struct scram_attr *scram_slot(struct scram_challenge *c, char key)
{
	switch (key) {
	case 'r':
		return &c->r;
	case 's':
		return &c->s;
	case 'i':
		return &c->i;
	}
	return NULL;
}

static int scram_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Splits a server-first message (len bytes) at ',' into k=value pairs and
 * takes r, s and i by key. 0, or -1 when a pair is malformed, r, s or i is
 * repeated or missing, or m= is present: RFC 5802 5.1 reserves it for a
 * mandatory extension, which a client must fail on. Other extensions are
 * ignored, as the same section says.
 */
static int scram_parse_first(const char *msg, size_t len,
			     struct scram_challenge *c)
{
	const char *p = msg, *end = msg + len;

	memset(c, 0, sizeof(*c));
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;
		struct scram_attr *a = scram_slot(c, *p);

		if (stop - p < 2 || !scram_key_char(p[0]) || p[1] != '=' ||
		    p[0] == 'm' || (a && a->seen))
			return -1;
		if (a) {
			a->v = p + 2;
			a->len = (size_t)(stop - a->v);
			a->seen = 1;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return c->r.seen && c->s.seen && c->i.seen ? 0 : -1;
}

/* The server nonce must extend ours with a part of its own (RFC 5802 5.1):
 * a replay of an old exchange would otherwise be answered. */
static int scram_nonce_ok(const struct scram *s, const struct scram_attr *r)
{
	const char *cnonce = s->bare + s->bare_len - s->cnonce_len;

	return r->len > s->cnonce_len &&
	       memcmp(r->v, cnonce, s->cnonce_len) == 0 &&
	       scram_printable(r->v, r->len);
}

/* The iteration count: decimal, no leading zero, within the bounds; or -1. */
static long scram_iterations(const struct scram_attr *a)
{
	long n = 0;

	if (a->len == 0 || a->len > 7 || a->v[0] == '0')
		return -1;
	for (size_t k = 0; k < a->len; k++) {
		if (a->v[k] < '0' || a->v[k] > '9')
			return -1;
		n = n * 10 + (a->v[k] - '0');
	}
	return n < SCRAM_MIN_ITER || n > SCRAM_MAX_ITER ? -1 : n;
}

/* Decodes the salt into out (SCRAM_MAX_MSG bytes); its length, or -1. */
static long scram_salt(const struct scram_attr *a, unsigned char *out)
{
	char text[SCRAM_MAX_MSG + 1];
	long n;

	memcpy(text, a->v, a->len);
	text[a->len] = '\0';
	n = seal_unbase64(out, SCRAM_MAX_MSG, text, SEAL_B64);
	return n > 0 ? n : -1;
}

static int scram_hmac(const struct scram *s, const unsigned char *key,
		      const void *data, size_t len, unsigned char *out)
{
	return HMAC(s->md, key, (int)s->hlen, data, len, out, NULL) ? 0 : -1;
}

/* The keys of RFC 5802 3, held together so one wipe clears them all. */
struct scram_keys {
	unsigned char salted[EVP_MAX_MD_SIZE];
	unsigned char client_key[EVP_MAX_MD_SIZE];
	unsigned char stored_key[EVP_MAX_MD_SIZE];
	unsigned char client_sig[EVP_MAX_MD_SIZE];
	unsigned char server_key[EVP_MAX_MD_SIZE];
};

/*
 * Derives the ClientProof into proof (s->hlen bytes) and keeps the
 * ServerSignature the server must send back; 0, or -1 when libcrypto fails.
 */
static int scram_derive(struct scram *s, const unsigned char *salt,
			size_t salt_len, long iter, const char *auth,
			size_t auth_len, unsigned char *proof)
{
	struct scram_keys k;
	int ok;

	ok = PKCS5_PBKDF2_HMAC(s->password, (int)s->password_len, salt,
			       (int)salt_len, (int)iter, s->md, (int)s->hlen,
			       k.salted) == 1 &&
	     scram_hmac(s, k.salted, "Client Key", 10, k.client_key) == 0 &&
	     EVP_Digest(k.client_key, s->hlen, k.stored_key, NULL, s->md,
			NULL) == 1 &&
	     scram_hmac(s, k.stored_key, auth, auth_len, k.client_sig) == 0 &&
	     scram_hmac(s, k.salted, "Server Key", 10, k.server_key) == 0 &&
	     scram_hmac(s, k.server_key, auth, auth_len, s->server_sig) == 0;
	for (size_t i = 0; ok && i < s->hlen; i++)
		proof[i] = k.client_key[i] ^ k.client_sig[i];
	seal_wipe(&k, sizeof(k));
	return ok ? 0 : -1;
}

/* client-final as base64: without (wlen bytes) ",p=" proof; or NULL. */
static char *scram_final_b64(const struct scram *s, const char *without,
			     size_t wlen, const unsigned char *proof)
{
	char *p64 = seal_base64(proof, s->hlen, SEAL_B64), *msg = NULL, *b64;
	size_t plen = p64 ? strlen(p64) : 0, len = wlen + 3 + plen;

	if (!p64 || !(msg = malloc(len + 1))) {
		scram_free_text(p64, plen);
		return NULL;
	}
	memcpy(msg, without, wlen);
	memcpy(msg + wlen, ",p=", 3);
	memcpy(msg + wlen + 3, p64, plen + 1);
	b64 = seal_base64(msg, len, SEAL_B64);
	scram_free_text(p64, plen);
	scram_free_text(msg, len);
	return b64;
}

/*
 * Builds AuthMessage (RFC 5802 3): client-first-bare "," server-first ","
 * client-final-without-proof, the last being "c=biws,r=<full nonce>", and
 * answers with the proof over it.
 */
static char *scram_prove(struct scram *s, const char *first, size_t first_len,
			 const struct scram_attr *r, const unsigned char *salt,
			 size_t salt_len, long iter)
{
	size_t wlen = sizeof(scram_cbind) - 1 + r->len;
	size_t alen = s->bare_len + 1 + first_len + 1 + wlen;
	char *auth = malloc(alen + 1), *without, *b64 = NULL;
	unsigned char proof[EVP_MAX_MD_SIZE];

	if (!auth)
		return NULL;
	memcpy(auth, s->bare, s->bare_len);
	auth[s->bare_len] = ',';
	memcpy(auth + s->bare_len + 1, first, first_len);
	auth[s->bare_len + 1 + first_len] = ',';
	without = auth + alen - wlen;
	memcpy(without, scram_cbind, sizeof(scram_cbind) - 1);
	memcpy(without + sizeof(scram_cbind) - 1, r->v, r->len);
	auth[alen] = '\0';
	if (scram_derive(s, salt, salt_len, iter, auth, alen, proof) == 0)
		b64 = scram_final_b64(s, without, wlen, proof);
	seal_wipe(proof, sizeof(proof));
	scram_free_text(auth, alen);
	return b64;
}

static char *scram_answer(struct scram *s, const char *server_first_b64)
{
	char first[SCRAM_MAX_MSG + 1];
	unsigned char salt[SCRAM_MAX_MSG];
	struct scram_challenge c;
	long n = scram_decode(server_first_b64, first), salt_len = -1,
	     iter = -1;

	if (n < 0 || scram_parse_first(first, (size_t)n, &c) != 0 ||
	    !scram_nonce_ok(s, &c.r) || (iter = scram_iterations(&c.i)) < 0 ||
	    (salt_len = scram_salt(&c.s, salt)) < 0)
		return NULL;
	return scram_prove(s, first, (size_t)n, &c.r, salt, (size_t)salt_len,
			   iter);
}

char *scram_client_final(struct scram *s, const char *server_first_b64)
{
	char *b64;

	if (!s || s->state != SCRAM_STARTED)
		return NULL;
	b64 = scram_answer(s, server_first_b64);
	/* One answer per exchange: the password is not needed again. */
	scram_free_text(s->password, s->password_len);
	s->password = NULL;
	s->state = b64 ? SCRAM_FINAL_SENT : SCRAM_OVER;
	return b64;
}

int scram_verify_server(struct scram *s, const char *server_final_b64)
{
	char msg[SCRAM_MAX_MSG + 1], *comma;
	unsigned char v[EVP_MAX_MD_SIZE];
	int ok;

	/* Anything but v= (e=<error> above all) is a failure. */
	if (!s || s->state != SCRAM_FINAL_SENT ||
	    scram_decode(server_final_b64, msg) < 0 ||
	    strncmp(msg, "v=", 2) != 0)
		return -1;
	/* Extensions may follow the verifier (RFC 5802 7). */
	if ((comma = strchr(msg, ',')))
		*comma = '\0';
	ok = seal_unbase64(v, s->hlen, msg + 2, SEAL_B64) == (long)s->hlen &&
	     seal_equal(v, s->server_sig, s->hlen);
	seal_wipe(v, sizeof(v));
	return ok ? 0 : -1;
}

void scram_free(struct scram *s)
{
	if (!s)
		return;
	scram_free_text(s->password, s->password_len);
	scram_free_text(s->bare, s->bare_len);
	seal_wipe(s, sizeof(*s));
	free(s);
}

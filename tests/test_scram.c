/* test_scram.c: SCRAM client messages against the RFC examples and
 * Python's hashlib, and the server messages that must be refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scram.h"
#include "seal.h"
#include "tap.h"

/* The exchanges of RFC 5802 5 (SHA-1) and RFC 7677 3 (SHA-256). */
#define NONCE1 "fyko+d2lbbFgONRv9qkxdawL"
#define FIRST1 "r=" NONCE1 "3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
#define FINAL1                                                                 \
	"c=biws,r=" NONCE1 "3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
#define VERIFY1 "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
#define NONCE256 "rOprNGfwEbeRWgbNEkqO"
#define SNONCE256 NONCE256 "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define FIRST256 "r=" SNONCE256 ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define FINAL256                                                               \
	"c=biws,r=" SNONCE256                                                  \
	",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define VERIFY256 "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/*
 * No RFC has a SCRAM-SHA-512 example. These were computed with Python 3's
 * hashlib.pbkdf2_hmac("sha512", b"pencil", salt, 4096), hmac.new() and
 * hashlib.sha512() following RFC 5802 3 (the same script reproduces both
 * RFC examples above), for the salt b"talkproxy salt!!".
 */
#define FIRST512 "r=" NONCE256 "srvNonce512,s=dGFsa3Byb3h5IHNhbHQhIQ==,i=4096"
#define FINAL512                                                               \
	"c=biws,r=" NONCE256 "srvNonce512,p="                                  \
	"YpBy+k0Dkw58diqBj5YnCyZvOVPIu7nh1p4dqGl3M4/"                          \
	"Wzp8Fy8D0I+59KrW0egcNL3/9cdx43U2jJAznqyvPuA=="
#define VERIFY512                                                              \
	"v=sahkc9C/vjM9W2qaLCCJ79TXtB67nLorPmOG7GVcx"                          \
	"tAAaZDmpJ8sjjksv182f/fOio1phZU8oMcw6m59RY9M0A=="

/* RFC 5802's exchange with the attributes reordered (the same Python). */
#define FIRST1_ISR "i=4096,s=QSXCR+Q6sek8bf92,r=" NONCE1 "3rfcNHYJY1ZVvWVs7j"
#define FINAL1_ISR                                                             \
	"c=biws,r=" NONCE1 "3rfcNHYJY1ZVvWVs7j,p=rAiMREVactZ7SJww3WpZkytW0dk="
#define VERIFY1_ISR "v=xKR19a7lT0PzqdjDUr0lZBd6LI4="

static char *b64(const char *text, size_t len)
{
	return seal_base64(text, len, SEAL_B64);
}

/* The text a base64 message carries (malloc'd), or NULL. */
static char *unb64(const char *b)
{
	size_t room = b ? strlen(b) + 1 : 0;
	char *text = b ? malloc(room) : NULL;
	long n = text ? seal_unbase64((uint8_t *)text, room, b, SEAL_B64) : -1;

	if (n < 0) {
		free(text);
		return NULL;
	}
	text[n] = '\0';
	return text;
}

/* 1 when the client-first message of s carries want. */
static int first_is(struct scram *s, const char *want)
{
	char *b = scram_client_first(s), *text = unb64(b);
	int same = text && strcmp(text, want) == 0;

	free(b);
	free(text);
	return same;
}

/* The client-final text answering server_first (malloc'd), or NULL. */
static char *answer(struct scram *s, const char *server_first, size_t len)
{
	char *in = b64(server_first, len), *out = scram_client_final(s, in);
	char *text = unb64(out);

	free(in);
	free(out);
	return text;
}

static int answer_is(struct scram *s, const char *server_first,
		     const char *want)
{
	char *text = answer(s, server_first, strlen(server_first));
	int same = text && strcmp(text, want) == 0;

	free(text);
	return same;
}

static int verify(struct scram *s, const char *server_final)
{
	char *in = b64(server_final, strlen(server_final));
	int r = scram_verify_server(s, in);

	free(in);
	return r;
}

static void test_rfc5802(void)
{
	struct scram *s = scram_new(SCRAM_SHA1, "user", "pencil", NONCE1);

	ok(s && first_is(s, "n,,n=user,r=" NONCE1),
	   "SHA-1: client-first of RFC 5802 5");
	ok(answer_is(s, FIRST1, FINAL1), "SHA-1: client-final of RFC 5802 5");
	ok(verify(s, VERIFY1) == 0, "SHA-1: the RFC's server-final verifies");
	ok(verify(s, "v=smF9pqV8S7suAoZWja4dJRkFsKQ=") == -1,
	   "SHA-1: a server signature changed in one byte does not");
	ok(verify(s, VERIFY256) == -1,
	   "SHA-1: a signature of another length does not");
	ok(verify(s, VERIFY1 ",x=ext") == 0,
	   "an extension after the verifier is ignored");
	ok(verify(s, "e=invalid-proof") == -1, "an e= error is a failure");
	ok(verify(s, "e=other," VERIFY1) == -1,
	   "an e= error is a failure whatever follows");
	ok(scram_verify_server(s, "bm90IGJhc2U2NA") == -1 &&
	       scram_verify_server(s, NULL) == -1,
	   "a server-final that is not padded base64 is a failure");
	ok(answer(s, FIRST1, strlen(FIRST1)) == NULL,
	   "a second challenge in the same exchange is refused");
	scram_free(s);
}

static void test_rfc7677(void)
{
	struct scram *s = scram_new(SCRAM_SHA256, "user", "pencil", NONCE256);

	ok(s && first_is(s, "n,,n=user,r=" NONCE256),
	   "SHA-256: client-first of RFC 7677 3");
	ok(answer_is(s, FIRST256, FINAL256),
	   "SHA-256: client-final of RFC 7677 3");
	ok(verify(s, VERIFY256) == 0,
	   "SHA-256: the RFC's server-final verifies");
	ok(verify(s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=") == -1,
	   "SHA-256: a changed server signature does not");
	scram_free(s);
}

static void test_sha512(void)
{
	struct scram *s = scram_new(SCRAM_SHA512, "user", "pencil", NONCE256);

	ok(answer_is(s, FIRST512, FINAL512),
	   "SHA-512: client-final as Python's hashlib computes it");
	ok(verify(s, VERIFY512) == 0,
	   "SHA-512: the server signature Python computes verifies");
	ok(verify(s, VERIFY1) == -1, "SHA-512: a SHA-1 signature does not");
	scram_free(s);
}

static void test_order(void)
{
	struct scram *s = scram_new(SCRAM_SHA1, "user", "pencil", NONCE1);
	char *text;

	ok(answer_is(s, FIRST1_ISR, FINAL1_ISR),
	   "attributes in the order i, s, r are taken by key");
	ok(verify(s, VERIFY1_ISR) == 0,
	   "and the AuthMessage holds the server-first as sent");
	scram_free(s);
	s = scram_new(SCRAM_SHA1, "user", "pencil", NONCE1);
	text = answer(s, FIRST1 ",x=future", strlen(FIRST1 ",x=future"));
	ok(text != NULL, "an unknown extension in server-first is ignored");
	free(text);
	scram_free(s);
}

static void test_names(void)
{
	struct scram *s = scram_new(SCRAM_SHA256, "a,b=c", "pw", "abc");
	struct scram *big;
	char user[SCRAM_MAX_TEXT + 2];

	ok(s && first_is(s, "n,,n=a=2Cb=3Dc,r=abc"),
	   "',' and '=' in the user name are escaped as =2C and =3D");
	scram_free(s);
	memset(user, 'u', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	big = scram_new(SCRAM_SHA1, user, "pw", NULL);
	ok(big == NULL, "a user name over SCRAM_MAX_TEXT bytes is refused");
	user[SCRAM_MAX_TEXT] = '\0';
	big = scram_new(SCRAM_SHA1, user, "pw", NULL);
	ok(big != NULL, "a user name of SCRAM_MAX_TEXT bytes is taken");
	scram_free(big);
	ok(scram_new("SCRAM-SHA-1-PLUS", "u", "p", NULL) == NULL &&
	       scram_new("PLAIN", "u", "p", NULL) == NULL &&
	       scram_new(NULL, "u", "p", NULL) == NULL,
	   "no exchange for a mechanism not supported");
	ok(scram_new(SCRAM_SHA1, "", "p", NULL) == NULL &&
	       scram_new(SCRAM_SHA1, NULL, "p", NULL) == NULL &&
	       scram_new(SCRAM_SHA1, "u", NULL, NULL) == NULL,
	   "no exchange without a user name or password");
	ok(scram_new(SCRAM_SHA1, "u", "p", "a,b") == NULL &&
	       scram_new(SCRAM_SHA1, "u", "p", "") == NULL &&
	       scram_new(SCRAM_SHA1, "u", "p", "a b") == NULL,
	   "a fixed nonce must be printable without ','");
	scram_free(NULL);
}

static void test_pick(void)
{
	const char *all[] = {"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-512",
			     "SCRAM-SHA-256"};
	const char *mid[] = {"SCRAM-SHA-1", "SCRAM-SHA-256-PLUS",
			     "SCRAM-SHA-256", "X-OAUTH2"};
	const char *low[] = {"SCRAM-SHA-1-PLUS", NULL, "SCRAM-SHA-1"};
	const char *none[] = {"PLAIN", "SCRAM-SHA-512-PLUS", "scram-sha-1"};
	const char *p;

	ok((p = scram_pick(all, 4)) && strcmp(p, "SCRAM-SHA-512") == 0,
	   "SHA-512 is preferred when offered");
	ok((p = scram_pick(mid, 4)) && strcmp(p, "SCRAM-SHA-256") == 0,
	   "SHA-256 over SHA-1, and never a -PLUS mechanism");
	ok((p = scram_pick(low, 3)) && strcmp(p, "SCRAM-SHA-1") == 0,
	   "SHA-1 when it is the only one (NULL entries skipped)");
	ok(scram_pick(none, 3) == NULL && scram_pick(NULL, 0) == NULL,
	   "no SCRAM mechanism offered: none (names are case-sensitive)");
	ok(scram_supports("SCRAM-SHA-1") && scram_supports("SCRAM-SHA-256") &&
	       scram_supports("SCRAM-SHA-512"),
	   "the three mechanisms are supported");
	ok(!scram_supports("SCRAM-SHA-1-PLUS") && !scram_supports("PLAIN") &&
	       !scram_supports(NULL),
	   "channel binding, other mechanisms and NULL are not");
}

/* 1 when an SHA-1 exchange with NONCE1 refuses server_first (len bytes),
 * and then verifies no server-final. */
static int refused_len(const char *server_first, size_t len)
{
	struct scram *s = scram_new(SCRAM_SHA1, "user", "pencil", NONCE1);
	char *text = answer(s, server_first, len);
	int r = s && !text && verify(s, VERIFY1) == -1;

	free(text);
	scram_free(s);
	return r;
}

static int refused(const char *server_first)
{
	return refused_len(server_first, strlen(server_first));
}

#define S1 "s=QSXCR+Q6sek8bf92"
#define SALT1 "," S1
#define R1 "r=" NONCE1 "3rfcNHYJY1ZVvWVs7j"

static void test_refusals(void)
{
	struct scram *s = scram_new(SCRAM_SHA1, "user", "pencil", NONCE1);
	char big[1200];

	ok(!refused(FIRST1), "the refusal helper takes the RFC's challenge");
	ok(refused("r=gyko+d2lbbFgONRv9qkxdawL3rfc" SALT1 ",i=4096"),
	   "a server nonce not extending ours is refused");
	ok(refused("r=" NONCE1 SALT1 ",i=4096"),
	   "a server nonce without a part of the server's is refused");
	ok(refused("r=" NONCE1 "ab cd" SALT1 ",i=4096"),
	   "a server nonce with a space is refused");
	ok(refused(R1 SALT1 ",i=1000") && refused(R1 SALT1 ",i=4095"),
	   "fewer than 4096 iterations is refused (a downgrade)");
	ok(refused(R1 SALT1 ",i=1000001") && refused(R1 SALT1 ",i=99999999"),
	   "more than a million iterations is refused (CPU exhaustion)");
	ok(refused(R1 SALT1 ",i=04096") && refused(R1 SALT1 ",i=4096x") &&
	       refused(R1 SALT1 ",i=-4096") && refused(R1 SALT1 ",i="),
	   "an iteration count that is not a plain decimal is refused");
	ok(refused(R1 SALT1), "a missing iteration count is refused");
	ok(refused(R1 ",i=4096"), "a missing salt is refused");
	ok(refused(S1 ",i=4096"), "a missing nonce is refused");
	ok(refused("m=ext," FIRST1) && refused(FIRST1 ",m=ext"),
	   "a mandatory extension (m=) is refused");
	ok(refused(FIRST1 ",i=4096") && refused(FIRST1 SALT1) &&
	       refused(R1 "," FIRST1),
	   "a repeated attribute is refused");
	ok(refused(R1 ",s=QSXCR+Q6sek8bf9,i=4096") &&
	       refused(R1 ",s=,i=4096") &&
	       refused(R1 ",s=QSXCR-Q6sek8bf92,i=4096"),
	   "a salt that is not base64 or is empty is refused");
	ok(refused(R1 ",," S1 ",i=4096") && refused(FIRST1 ",") &&
	       refused(FIRST1 ",x") && refused(FIRST1 ",1=a") && refused(""),
	   "an empty or malformed attribute is refused");
	ok(refused_len(FIRST1 "\0,x=y", sizeof(FIRST1 "\0,x=y") - 1),
	   "a NUL in the challenge is refused");
	memset(big, 'a', sizeof(big));
	memcpy(big, FIRST1 ",x=", strlen(FIRST1 ",x="));
	ok(refused_len(big, sizeof(big)),
	   "a challenge over the size bound is refused");
	ok(!refused_len(big, 1024), "a challenge of 1024 bytes is taken");
	ok(scram_client_final(s, "cj1meWtvK2QybGJi") == NULL,
	   "a challenge that is not padded base64 is refused");
	scram_free(s);
	s = scram_new(SCRAM_SHA1, "user", "pencil", NONCE1);
	ok(scram_client_final(s, NULL) == NULL &&
	       scram_verify_server(s, NULL) == -1,
	   "no challenge is refused");
	scram_free(s);
	s = scram_new(SCRAM_SHA1, "user", "pencil", NONCE1);
	ok(verify(s, VERIFY1) == -1,
	   "a server-final before client-final is a failure");
	scram_free(s);
}

static void test_fresh_nonce(void)
{
	struct scram *a = scram_new(SCRAM_SHA256, "user", "pencil", NULL);
	struct scram *b = scram_new(SCRAM_SHA256, "user", "pencil", NULL);
	char *fa = scram_client_first(a), *fb = scram_client_first(b);
	char *ta = unb64(fa), *tb = unb64(fb);
	const char *head = "n,,n=user,r=";

	ok(ta && tb && strncmp(ta, head, strlen(head)) == 0 &&
	       strlen(ta) == strlen(head) + 32 && strlen(tb) == strlen(ta),
	   "a fresh nonce is 24 random bytes as base64");
	ok(ta && tb && strcmp(ta, tb) != 0,
	   "two exchanges have different nonces");
	free(fa);
	free(fb);
	free(ta);
	free(tb);
	scram_free(a);
	scram_free(b);
}

int main(void)
{
	if (seal_init() == -1)
		return 1;
	test_rfc5802();
	test_rfc7677();
	test_sha512();
	test_order();
	test_names();
	test_pick();
	test_refusals();
	test_fresh_nonce();
	return tap_done();
}

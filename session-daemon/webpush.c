/*
 * webpush.c: RFC 8291 message encryption and RFC 8292 VAPID on OpenSSL 3
 * libcrypto, through the EVP and OSSL_PARAM interfaces only. It builds the
 * body and the Authorization value of one push; the push module sends them.
 * Nothing here decrypts: tests check the output with an independent receiver.
 */
#include "webpush.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "keyfile.h"
#include "log.h"

#define WEBPUSH_SALT_BYTES 16
#define WEBPUSH_RS 4096
#define WEBPUSH_TAG_BYTES 16
#define WEBPUSH_SECRET_BYTES 32
#define WEBPUSH_CEK_BYTES 16
#define WEBPUSH_NONCE_BYTES 12
/* RFC 8292 §2 allows 24 hours; half of that survives a skewed clock. */
#define WEBPUSH_JWT_LIFETIME (12 * 60 * 60)
/* An origin is a scheme and a DNS name; more is not an endpoint we serve. */
#define WEBPUSH_ORIGIN_MAX 300
/* A DER ECDSA-Sig-Value on P-256 is at most 72 bytes. */
#define WEBPUSH_DER_SIG_MAX 80

_Static_assert(WEBPUSH_MAX_PLAIN == 3993, "RFC 8291 §4 allows 3993 bytes");
_Static_assert(WEBPUSH_MAX_PLAIN + 1 + WEBPUSH_TAG_BYTES <= WEBPUSH_RS,
	       "the longest message fits one record, so rs never splits it");

/* The RFC's info strings end in a zero byte, which sizeof counts. */
static const char webpush_key_label[] = "WebPush: info";
static const char webpush_cek_label[] = "Content-Encoding: aes128gcm";
static const char webpush_nonce_label[] = "Content-Encoding: nonce";

struct webpush_vapid {
	EVP_PKEY *key;
	char *public_b64;
};

/*
 * Logs what failed with libcrypto's oldest reason, then empties the thread's
 * queue so a stale entry is not blamed on a later call (curl shares it).
 */
__attribute__((format(printf, 1, 2))) static void
webpush_crypto_error(const char *fmt, ...)
{
	unsigned long e = ERR_get_error();
	char what[512], why[256] = "no reason given";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	log_error("webpush: %s: %s", what, why);
	ERR_clear_error();
}

/* Unpadded base64url of n bytes, malloc'd; NULL (logged) on failure. */
static char *webpush_b64url(const void *in, size_t n)
{
	char *out;
	int m;

	if (n > INT_MAX / 2 || !(out = malloc(4 * ((n + 2) / 3) + 1))) {
		log_error("webpush: out of memory encoding %zu bytes", n);
		return NULL;
	}
	m = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	while (m > 0 && out[m - 1] == '=')
		m--;
	out[m] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	return out;
}

static int webpush_b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * Rewrites n base64url characters as padded standard base64 in buf (room
 * for n + 3 and a NUL): EVP_DecodeBlock knows only that alphabet. It also
 * skips surrounding whitespace, which is why the caller vets every byte.
 */
static int webpush_to_std_b64(const char *s, size_t n, char *buf)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (i % 4)
		buf[i++] = '=';
	buf[i] = '\0';
	return (int)i;
}

int webpush_decode_key(const char *s, uint8_t *out, size_t want)
{
	size_t n, pad = 0, got;
	unsigned char *bin;
	char *buf;
	int r = -1, m;

	if (!s || want > INT_MAX / 2)
		return -1;
	n = strlen(s);
	while (n > 0 && s[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	/* Padding, when present, must complete the last quantum exactly. */
	if (n % 4 == 1 || (pad && (n + pad) % 4 != 0))
		return -1;
	got = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (got != want)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!webpush_b64url_char(s[i]))
			return -1;
	buf = malloc(n + 4);
	bin = malloc(n / 4 * 3 + 3);
	if (buf && bin) {
		m = EVP_DecodeBlock(bin, (unsigned char *)buf,
				    webpush_to_std_b64(s, n, buf));
		if (m >= 0 && (size_t)m >= want) {
			memcpy(out, bin, want);
			r = 0;
		}
	}
	/* The auth secret passes through here. */
	if (bin)
		OPENSSL_clear_free(bin, n / 4 * 3 + 3);
	free(buf);
	return r;
}

/* Imports the subscriber's point; NULL (logged) when it is not on P-256. */
static EVP_PKEY *webpush_peer_key(const uint8_t pub[WEBPUSH_KEY_BYTES])
{
	uint8_t point[WEBPUSH_KEY_BYTES];
	char group[] = "P-256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group,
					     0),
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point,
					      sizeof(point)),
	    OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *key = NULL;

	/* RFC 8291 names the uncompressed form; libcrypto would also take a
	 * 65-byte "hybrid" point, which the receiver would not expect. */
	if (pub[0] != 0x04) {
		log_error("webpush: subscription key is not an uncompressed "
			  "point");
		return NULL;
	}
	memcpy(point, pub, sizeof(point));
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0 ||
	    !(check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) ||
	    EVP_PKEY_public_check(check) <= 0) {
		webpush_crypto_error("subscription key is not a P-256 point");
		EVP_PKEY_free(key);
		key = NULL;
	}
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

int webpush_key_valid(const uint8_t pub[WEBPUSH_KEY_BYTES])
{
	EVP_PKEY *key = webpush_peer_key(pub);

	EVP_PKEY_free(key);
	return key != NULL;
}

/*
 * Writes the uncompressed public point of key into pub. The conversion form
 * is set first because a key read from a file may carry the compressed one.
 */
static int webpush_public_point(EVP_PKEY *key, uint8_t pub[WEBPUSH_KEY_BYTES])
{
	size_t n = 0;

	if (EVP_PKEY_set_utf8_string_param(
		key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
		OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 1 ||
	    EVP_PKEY_get_octet_string_param(key,
					    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
					    pub, WEBPUSH_KEY_BYTES, &n) != 1 ||
	    n != WEBPUSH_KEY_BYTES || pub[0] != 0x04) {
		webpush_crypto_error("cannot export a P-256 public key");
		return -1;
	}
	return 0;
}

static int webpush_ecdh(EVP_PKEY *own, EVP_PKEY *peer,
			uint8_t secret[WEBPUSH_SECRET_BYTES])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
	size_t n = WEBPUSH_SECRET_BYTES;
	int r = -1;

	if (ctx && EVP_PKEY_derive_init(ctx) > 0 &&
	    EVP_PKEY_derive_set_peer(ctx, peer) > 0 &&
	    EVP_PKEY_derive(ctx, secret, &n) > 0 && n == WEBPUSH_SECRET_BYTES)
		r = 0;
	else
		webpush_crypto_error("ECDH failed");
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* HKDF-SHA256 (RFC 5869), extract and expand. */
static int webpush_hkdf(uint8_t *out, size_t outlen, const uint8_t *salt,
			size_t saltlen, const uint8_t *ikm, size_t ikmlen,
			const void *info, size_t infolen)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
					      saltlen),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm,
					      ikmlen),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
					      infolen),
	    OSSL_PARAM_construct_end(),
	};
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int r = -1;

	if (ctx && EVP_KDF_derive(ctx, out, outlen, params) > 0)
		r = 0;
	else
		webpush_crypto_error("HKDF failed");
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return r;
}

/* RFC 8291 §3.4: from the ECDH secret to the content key and nonce. */
static int webpush_derive(const uint8_t secret[WEBPUSH_SECRET_BYTES],
			  const uint8_t auth[WEBPUSH_AUTH_BYTES],
			  const uint8_t ua_public[WEBPUSH_KEY_BYTES],
			  const uint8_t as_public[WEBPUSH_KEY_BYTES],
			  const uint8_t salt[WEBPUSH_SALT_BYTES],
			  uint8_t cek[WEBPUSH_CEK_BYTES],
			  uint8_t nonce[WEBPUSH_NONCE_BYTES])
{
	uint8_t info[sizeof(webpush_key_label) + 2 * WEBPUSH_KEY_BYTES];
	uint8_t ikm[WEBPUSH_SECRET_BYTES];
	int r = -1;

	memcpy(info, webpush_key_label, sizeof(webpush_key_label));
	memcpy(info + sizeof(webpush_key_label), ua_public, WEBPUSH_KEY_BYTES);
	memcpy(info + sizeof(webpush_key_label) + WEBPUSH_KEY_BYTES, as_public,
	       WEBPUSH_KEY_BYTES);
	if (webpush_hkdf(ikm, sizeof(ikm), auth, WEBPUSH_AUTH_BYTES, secret,
			 WEBPUSH_SECRET_BYTES, info, sizeof(info)) == -1 ||
	    webpush_hkdf(cek, WEBPUSH_CEK_BYTES, salt, WEBPUSH_SALT_BYTES, ikm,
			 sizeof(ikm), webpush_cek_label,
			 sizeof(webpush_cek_label)) == -1 ||
	    webpush_hkdf(nonce, WEBPUSH_NONCE_BYTES, salt, WEBPUSH_SALT_BYTES,
			 ikm, sizeof(ikm), webpush_nonce_label,
			 sizeof(webpush_nonce_label)) == -1)
		goto out;
	r = 0;
out:
	OPENSSL_cleanse(ikm, sizeof(ikm));
	return r;
}

/*
 * Writes AES-128-GCM(plain || 0x02) and the tag to out (len + 17 bytes).
 * The lone record is the last one, which RFC 8188 §2 marks with a 2; no
 * zero padding follows, since hiding the length is not worth the bytes.
 */
static int webpush_seal(uint8_t *out, const uint8_t *plain, size_t len,
			const uint8_t cek[WEBPUSH_CEK_BYTES],
			const uint8_t nonce[WEBPUSH_NONCE_BYTES])
{
	static const uint8_t delimiter = 0x02;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, done = 0, r = -1;

	if (!ctx ||
	    !EVP_EncryptInit_ex2(ctx, EVP_aes_128_gcm(), cek, nonce, NULL))
		goto out;
	if (len > 0 && !EVP_EncryptUpdate(ctx, out, &n, plain, (int)len))
		goto out;
	done = n;
	if (!EVP_EncryptUpdate(ctx, out + done, &n, &delimiter, 1))
		goto out;
	done += n;
	if (!EVP_EncryptFinal_ex(ctx, out + done, &n))
		goto out;
	done += n;
	if ((size_t)done != len + 1 ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, WEBPUSH_TAG_BYTES,
				 out + done))
		goto out;
	r = 0;
out:
	if (r == -1)
		webpush_crypto_error("AES-128-GCM failed");
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

/* Salt is already in hdr; adds rs, idlen and the sender's key. */
static void webpush_write_header(uint8_t *hdr,
				 const uint8_t as_public[WEBPUSH_KEY_BYTES])
{
	uint8_t *p = hdr + WEBPUSH_SALT_BYTES;

	*p++ = (uint8_t)(WEBPUSH_RS >> 24);
	*p++ = (uint8_t)(WEBPUSH_RS >> 16);
	*p++ = (uint8_t)(WEBPUSH_RS >> 8);
	*p++ = (uint8_t)WEBPUSH_RS;
	*p++ = WEBPUSH_KEY_BYTES;
	memcpy(p, as_public, WEBPUSH_KEY_BYTES);
}

int webpush_encrypt(const uint8_t *plain, size_t len,
		    const uint8_t ua_public[WEBPUSH_KEY_BYTES],
		    const uint8_t auth[WEBPUSH_AUTH_BYTES], uint8_t **out,
		    size_t *outlen)
{
	uint8_t secret[WEBPUSH_SECRET_BYTES], cek[WEBPUSH_CEK_BYTES];
	uint8_t nonce[WEBPUSH_NONCE_BYTES], as_public[WEBPUSH_KEY_BYTES];
	EVP_PKEY *peer = NULL, *own = NULL;
	uint8_t *body = NULL;
	int r = -1;

	if (len > WEBPUSH_MAX_PLAIN) {
		log_error("webpush: message of %zu bytes is over the %d a "
			  "push may carry",
			  len, WEBPUSH_MAX_PLAIN);
		return -1;
	}
	if (!(peer = webpush_peer_key(ua_public)))
		goto out;
	/* A fresh sender key per message: RFC 8291 §2 forbids reuse. */
	if (!(own = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"))) {
		webpush_crypto_error("cannot make an ephemeral key");
		goto out;
	}
	if (webpush_public_point(own, as_public) == -1)
		goto out;
	if (!(body = malloc(len + WEBPUSH_OVERHEAD))) {
		log_error("webpush: out of memory for a push body");
		goto out;
	}
	if (RAND_bytes(body, WEBPUSH_SALT_BYTES) != 1) {
		webpush_crypto_error("no random salt");
		goto out;
	}
	if (webpush_ecdh(own, peer, secret) == -1 ||
	    webpush_derive(secret, auth, ua_public, as_public, body, cek,
			   nonce) == -1 ||
	    webpush_seal(body + WEBPUSH_HEADER_BYTES, plain, len, cek, nonce) ==
		-1)
		goto out;
	webpush_write_header(body, as_public);
	*out = body;
	*outlen = len + WEBPUSH_OVERHEAD;
	body = NULL;
	r = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(cek, sizeof(cek));
	OPENSSL_cleanse(nonce, sizeof(nonce));
	free(body);
	EVP_PKEY_free(own);
	EVP_PKEY_free(peer);
	return r;
}

/* A daemon has no terminal: an encrypted key fails instead of prompting. */
static int webpush_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Opens pem_path for reading only when the key is private to its owner. */
static FILE *webpush_open_private(const char *path)
{
	FILE *f;
	int fd = keyfile_open_private(path, "VAPID key");

	if (fd == -1)
		return NULL;
	if (!(f = fdopen(fd, "r"))) {
		log_error("webpush: cannot read VAPID key %s: %m", path);
		close(fd);
	}
	return f;
}

static int webpush_is_p256(EVP_PKEY *key)
{
	char name[32];
	size_t n = 0;

	/* libcrypto reports the SECG name; accept the NIST one too. */
	return EVP_PKEY_is_a(key, "EC") &&
	       EVP_PKEY_get_group_name(key, name, sizeof(name), &n) == 1 &&
	       (strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0);
}

struct webpush_vapid *webpush_vapid_load(const char *pem_path)
{
	struct webpush_vapid *v = NULL;
	uint8_t pub[WEBPUSH_KEY_BYTES];
	EVP_PKEY *key;
	FILE *f = webpush_open_private(pem_path);

	if (!f)
		return NULL;
	key = PEM_read_PrivateKey(f, NULL, webpush_no_passphrase, NULL);
	fclose(f);
	if (!key) {
		webpush_crypto_error("VAPID key %s holds no unencrypted "
				     "private key",
				     pem_path);
		return NULL;
	}
	if (!webpush_is_p256(key)) {
		log_error("webpush: VAPID key %s is not a P-256 key", pem_path);
		goto fail;
	}
	if (webpush_public_point(key, pub) == -1 ||
	    !(v = calloc(1, sizeof(*v))) ||
	    !(v->public_b64 = webpush_b64url(pub, sizeof(pub))))
		goto fail;
	v->key = key;
	return v;
fail:
	free(v);
	EVP_PKEY_free(key);
	return NULL;
}

static int webpush_write_key(int fd, EVP_PKEY *key)
{
	FILE *f = fdopen(fd, "w");
	int ok;

	if (!f) {
		close(fd);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	     fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

int webpush_vapid_generate(const char *pem_path)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	int fd, r = -1;

	if (!key) {
		webpush_crypto_error("cannot generate a VAPID key");
		return -1;
	}
	fd = keyfile_create(pem_path, "VAPID key");
	if (fd != -1 && webpush_write_key(fd, key) == -1) {
		log_error("webpush: cannot write VAPID key %s", pem_path);
		ERR_clear_error();
		unlink(pem_path);
	} else if (fd != -1) {
		r = 0;
	}
	EVP_PKEY_free(key);
	return r;
}

void webpush_vapid_free(struct webpush_vapid *v)
{
	if (!v)
		return;
	EVP_PKEY_free(v->key);
	free(v->public_b64);
	free(v);
}

const char *webpush_vapid_public(const struct webpush_vapid *v)
{
	return v->public_b64;
}

static void webpush_ascii_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/*
 * Writes the origin of url (scheme://host[:port], RFC 6454: lower case, no
 * user info, no default port) into out, since push services compare aud
 * with their own origin as text.
 */
static int webpush_origin(const char *url, char *out, size_t size)
{
	const char *sep = strstr(url, "://"), *auth, *host, *at;
	size_t slen, alen, hlen;

	if (!sep || sep == url ||
	    strspn(url, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ") != (size_t)(sep - url))
		goto bad;
	slen = (size_t)(sep - url);
	auth = sep + 3;
	alen = strcspn(auth, "/?#");
	at = memrchr(auth, '@', alen);
	host = at ? at + 1 : auth;
	hlen = alen - (size_t)(host - auth);
	if (slen == 5 && strncasecmp(url, "https", 5) == 0 && hlen > 4 &&
	    memcmp(host + hlen - 4, ":443", 4) == 0)
		hlen -= 4;
	else if (slen == 4 && strncasecmp(url, "http", 4) == 0 && hlen > 3 &&
		 memcmp(host + hlen - 3, ":80", 3) == 0)
		hlen -= 3;
	if (hlen == 0 || host[0] == ':' || slen + 3 + hlen >= size)
		goto bad;
	snprintf(out, size, "%.*s://%.*s", (int)slen, url, (int)hlen, host);
	webpush_ascii_lower(out);
	return 0;
bad:
	log_error("webpush: endpoint URL has no usable scheme://host");
	return -1;
}

static char *webpush_b64url_json(json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	char *b64 = text ? webpush_b64url(text, strlen(text)) : NULL;

	free(text);
	json_decref(j);
	return b64;
}

/* The JWS signing input: base64url(header) "." base64url(claims). */
static char *webpush_jwt_input(const char *aud, const char *sub, time_t now)
{
	char *h = webpush_b64url_json(
	    json_pack("{s:s, s:s}", "typ", "JWT", "alg", "ES256"));
	char *c = webpush_b64url_json(
	    json_pack("{s:s, s:I, s:s}", "aud", aud, "exp",
		      (json_int_t)now + WEBPUSH_JWT_LIFETIME, "sub", sub));
	size_t size = h && c ? strlen(h) + 1 + strlen(c) + 1 : 0;
	char *input = NULL;

	if (size && (input = malloc(size)))
		snprintf(input, size, "%s.%s", h, c);
	else
		log_error("webpush: cannot build the VAPID claims");
	free(h);
	free(c);
	return input;
}

/* ES256 wants r || s, 32 bytes each (RFC 7518 §3.4); libcrypto signs DER. */
static int webpush_der_to_raw(const uint8_t *der, size_t len, uint8_t raw[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r = NULL, *s = NULL;
	int ok;

	if (!sig)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	ok = BN_bn2binpad(r, raw, 32) == 32 &&
	     BN_bn2binpad(s, raw + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	return ok ? 0 : -1;
}

static int webpush_sign(EVP_PKEY *key, const char *input, uint8_t raw[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[WEBPUSH_DER_SIG_MAX];
	size_t len = sizeof(der);
	int r = -1;

	if (ctx &&
	    EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) ==
		1 &&
	    EVP_DigestSign(ctx, der, &len, (const unsigned char *)input,
			   strlen(input)) == 1 &&
	    webpush_der_to_raw(der, len, raw) == 0)
		r = 0;
	else
		webpush_crypto_error("cannot sign the VAPID token");
	EVP_MD_CTX_free(ctx);
	return r;
}

static int webpush_contact_ok(const char *subject)
{
	return subject && (strncmp(subject, "mailto:", 7) == 0 ||
			   strncmp(subject, "https:", 6) == 0);
}

char *webpush_vapid_header(const struct webpush_vapid *v,
			   const char *endpoint_url, const char *subject,
			   time_t now)
{
	char origin[WEBPUSH_ORIGIN_MAX], *input = NULL, *sig64 = NULL;
	char *header = NULL;
	uint8_t sig[64];
	size_t size;

	if (!webpush_contact_ok(subject)) {
		log_error("webpush: VAPID subject must be a mailto: or https: "
			  "contact");
		return NULL;
	}
	if (webpush_origin(endpoint_url, origin, sizeof(origin)) == -1 ||
	    !(input = webpush_jwt_input(origin, subject, now)) ||
	    webpush_sign(v->key, input, sig) == -1 ||
	    !(sig64 = webpush_b64url(sig, sizeof(sig))))
		goto out;
	size = sizeof("vapid t=., k=") + strlen(input) + strlen(sig64) +
	       strlen(v->public_b64);
	if ((header = malloc(size)))
		snprintf(header, size, "vapid t=%s.%s, k=%s", input, sig64,
			 v->public_b64);
	else
		log_error("webpush: out of memory for a VAPID header");
out:
	free(input);
	free(sig64);
	return header;
}

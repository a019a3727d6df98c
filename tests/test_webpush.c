/*
 * test_webpush.c: shapes and refusals of Web Push encryption and VAPID.
 * Nothing here decrypts or verifies: with --encrypt, --vapid or --generate
 * this binary serves tests/js/check_webpush.js, which does that with code
 * written by others (http_ece, node's crypto).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "tap.h"
#include "webpush.h"

/* RFC 8291 §5: a real subscriber's p256dh key and auth secret. */
#define RFC_UA_PUBLIC                                                          \
	"BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7V" \
	"d8pZGH6SRpkNtoIAiw4"
#define RFC_AUTH "BTBZMqHH6r4Tts7J_aSIgg"

/*
 * Keys the loader must refuse or convert are made at run time by the
 * openssl command (an implementation other than ours), never kept in the
 * tree. Each command ends in -out; the file's path is appended.
 */
static const struct {
	const char *file;
	const char *cmd;
} key_recipes[] = {
    {"ed25519.pem", "openssl genpkey -algorithm ED25519 -out "},
    {"p384.pem", "openssl genpkey -algorithm EC -pkeyopt "
		 "ec_paramgen_curve:P-384 -out "},
    {"enc.pem", "openssl genpkey -algorithm EC -pkeyopt "
		"ec_paramgen_curve:P-256 -aes-128-cbc -pass pass:x -out "},
    /* SEC1, with its public point stored compressed. */
    {"compressed.pem", "openssl ecparam -name prime256v1 -genkey -noout | "
		       "openssl ec -conv_form compressed -out "},
};

static char tmpdir[] = "/tmp/test_webpush.XXXXXX";

static const struct {
	const char *text;
	size_t want;
	int accept;
	const char *name;
} decode_cases[] = {
    {RFC_AUTH, 16, 1, "accepts a 16-byte auth secret without padding"},
    {RFC_AUTH "==", 16, 1, "accepts a 16-byte auth secret with padding"},
    {RFC_UA_PUBLIC, 65, 1, "accepts a 65-byte p256dh key without padding"},
    {RFC_UA_PUBLIC "=", 65, 1, "accepts a 65-byte p256dh key with padding"},
    {"-_-_AAECAwQFBgcICQoLDA", 16, 1, "accepts the URL-safe - and _"},
    {"+/+/AAECAwQFBgcICQoLDA", 16, 0, "refuses the standard + and /"},
    {"BTBZMqHH6r4Tts7J_aSIg", 16, 0, "refuses a key one character short"},
    {RFC_AUTH "A", 16, 0, "refuses a key one character long"},
    {RFC_AUTH, 65, 0, "refuses an auth secret where a p256dh is wanted"},
    {RFC_UA_PUBLIC, 16, 0, "refuses a p256dh where an auth is wanted"},
    {RFC_AUTH "=", 16, 0, "refuses padding that leaves a quantum short"},
    {RFC_AUTH "===", 16, 0, "refuses three padding characters"},
    {"BTBZMqHH=r4Tts7J_aSIgg", 16, 0, "refuses padding in the middle"},
    {"BTBZMqHH r4Tts7J_aSIgg", 16, 0, "refuses a space inside"},
    {"BTBZMqHH6r4Tts7J_aSIg\n", 16, 0, "refuses a trailing newline"},
    {"BTBZMqHH6r4Tts7J_aSI.g", 16, 0, "refuses a character outside base64url"},
    {"", 16, 0, "refuses an empty string"},
};

static void test_decode_key(void)
{
	static const uint8_t auth[16] = {0x05, 0x30, 0x59, 0x32, 0xa1, 0xc7,
					 0xea, 0xbe, 0x13, 0xb6, 0xce, 0xc9,
					 0xfd, 0xa4, 0x88, 0x82};
	static const uint8_t urlsafe[4] = {0xfb, 0xff, 0xbf, 0x00};
	uint8_t out[65];

	for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]);
	     i++) {
		int r = webpush_decode_key(decode_cases[i].text, out,
					   decode_cases[i].want);
		ok(r == (decode_cases[i].accept ? 0 : -1), "decode_key %s",
		   decode_cases[i].name);
	}
	ok(webpush_decode_key(NULL, out, 16) == -1, "decode_key refuses NULL");
	ok(webpush_decode_key(RFC_AUTH "==", out, 16) == 0 &&
	       memcmp(out, auth, 16) == 0,
	   "decode_key yields the RFC's auth bytes");
	ok(webpush_decode_key("-_-_AAECAwQFBgcICQoLDA", out, 16) == 0 &&
	       memcmp(out, urlsafe, 4) == 0 && out[15] == 12,
	   "decode_key reads - and _ as 62 and 63");
}

/* Encrypts len bytes of 'a' for the RFC's subscriber. */
static int encrypt_n(size_t len, uint8_t **out, size_t *outlen)
{
	uint8_t ua[65], auth[16];
	uint8_t *plain = malloc(len + 1);
	int r;

	memset(plain, 'a', len);
	webpush_decode_key(RFC_UA_PUBLIC, ua, sizeof(ua));
	webpush_decode_key(RFC_AUTH, auth, sizeof(auth));
	r = webpush_encrypt(plain, len, ua, auth, out, outlen);
	free(plain);
	return r;
}

static void test_encrypt_limits(void)
{
	uint8_t ua[65], auth[16], *out = NULL, marker;
	size_t outlen = 0;

	webpush_decode_key(RFC_UA_PUBLIC, ua, sizeof(ua));
	webpush_decode_key(RFC_AUTH, auth, sizeof(auth));
	out = &marker;
	ok(encrypt_n(3994, &out, &outlen) == -1 && out == &marker,
	   "encrypt refuses 3994 bytes and leaves *out alone");
	ok(encrypt_n(3993, &out, &outlen) == 0 && outlen == 4096,
	   "encrypt takes 3993 bytes into a 4096-byte body");
	free(out);
	ok(webpush_encrypt(NULL, 0, ua, auth, &out, &outlen) == 0 &&
	       outlen == WEBPUSH_OVERHEAD,
	   "encrypt takes an empty message");
	free(out);
}

static void test_encrypt_refuses_points(void)
{
	static const struct {
		int at, value;
		const char *name;
	} cases[] = {
	    {64, -1, "a point not on the curve"},
	    {0, 0x02, "a compressed-point prefix"},
	    {0, 0x06, "a hybrid-point prefix"},
	    {-1, 0x00, "an all-zero key"},
	    {-1, 0xff, "coordinates beyond the field"},
	};
	uint8_t ua[65], auth[16], *out, marker;
	size_t outlen;

	webpush_decode_key(RFC_AUTH, auth, sizeof(auth));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		webpush_decode_key(RFC_UA_PUBLIC, ua, sizeof(ua));
		if (cases[i].at == -1) {
			memset(ua + 1, cases[i].value, 64);
		} else if (cases[i].value == -1) {
			ua[cases[i].at] ^= 1;
		} else {
			ua[cases[i].at] = (uint8_t)cases[i].value;
		}
		out = &marker;
		ok(webpush_encrypt((const uint8_t *)"x", 1, ua, auth, &out,
				   &outlen) == -1 &&
		       out == &marker,
		   "encrypt refuses %s", cases[i].name);
	}
}

static void test_encrypt_layout(void)
{
	static const uint8_t rs[4] = {0, 0, 0x10, 0};
	uint8_t ua[65], *a, *b;
	size_t alen, blen;

	webpush_decode_key(RFC_UA_PUBLIC, ua, sizeof(ua));
	if (encrypt_n(100, &a, &alen) == -1 ||
	    encrypt_n(100, &b, &blen) == -1) {
		ok(0, "encrypt makes a body for a 100-byte message");
		return;
	}
	ok(alen == 16 + 4 + 1 + 65 + 100 + 1 + 16,
	   "a body is salt, rs, idlen, key, message, delimiter and tag");
	ok(memcmp(a + 16, rs, 4) == 0, "the record size is 4096, big-endian");
	ok(a[20] == 65, "the key id is 65 bytes long");
	ok(a[21] == 0x04, "the key id is an uncompressed point");
	ok(memcmp(a + 21, ua, 65) != 0, "the key id is not the subscriber's");
	ok(memmem(a, alen, "aaaaaaaa", 8) == NULL,
	   "a body does not contain its message");
	ok(memcmp(a, b, 16) != 0,
	   "two encryptions of one message use two salts");
	ok(memcmp(a + 21, b + 21, 65) != 0,
	   "two encryptions of one message use two sender keys");
	ok(alen == blen && memcmp(a + 86, b + 86, alen - 86) != 0,
	   "two encryptions of one message differ");
	free(a);
	free(b);
}

static void path_in_tmp(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	size_t n = strlen(text);
	int r = fd != -1 && write(fd, text, n) == (ssize_t)n ? 0 : -1;

	if (fd != -1)
		close(fd);
	return r;
}

/* Runs the recipe for file into the temporary directory. 0 or -1. */
static int make_key(const char *file)
{
	char path[256], cmd[512];

	path_in_tmp(path, sizeof(path), file);
	for (size_t i = 0; i < sizeof(key_recipes) / sizeof(key_recipes[0]); i++)
		if (strcmp(key_recipes[i].file, file) == 0) {
			snprintf(cmd, sizeof(cmd), "%s%s", key_recipes[i].cmd, path);
			return system(cmd) == 0 && chmod(path, 0600) == 0 ? 0 : -1;
		}
	return -1;
}

/* The uncompressed public key of a key file as the openssl command
 * prints it, in base64url without padding; "" on failure. */
static void openssl_public(const char *path, char *out, size_t outlen)
{
	char cmd[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "openssl ec -in %s -pubout -conv_form uncompressed -outform DER "
		 "2>/dev/null | tail -c 65 | basenc --base64url | tr -d '=\\n'",
		 path);
	out[0] = '\0';
	if ((f = popen(cmd, "r"))) {
		if (!fgets(out, (int)outlen, f))
			out[0] = '\0';
		pclose(f);
	}
}

static void test_vapid_generate(void)
{
	char path[256], link[256];
	struct stat st, again;

	path_in_tmp(path, sizeof(path), "vapid.pem");
	ok(webpush_vapid_generate(path) == 0 && stat(path, &st) == 0 &&
	       (st.st_mode & 07777) == 0600,
	   "vapid_generate creates a key file with mode 0600");
	ok(webpush_vapid_generate(path) == -1 && stat(path, &again) == 0 &&
	       again.st_ino == st.st_ino && again.st_size == st.st_size &&
	       again.st_mtim.tv_nsec == st.st_mtim.tv_nsec,
	   "vapid_generate refuses to overwrite a key");
	path_in_tmp(link, sizeof(link), "link.pem");
	path_in_tmp(path, sizeof(path), "target.pem");
	ok(symlink(path, link) == 0 && webpush_vapid_generate(link) == -1 &&
	       access(path, F_OK) == -1,
	   "vapid_generate refuses to write through a dangling link");
	path_in_tmp(path, sizeof(path), "missing/vapid.pem");
	ok(webpush_vapid_generate(path) == -1,
	   "vapid_generate fails in a missing directory");
}

static void test_vapid_load_modes(void)
{
	static const struct {
		mode_t mode;
		int accept;
		const char *name;
	} cases[] = {
	    {0644, 0, "refuses a key readable by everyone"},
	    {0640, 0, "refuses a key readable by its group"},
	    {0602, 0, "refuses a key writable by others"},
	    {0600, 1, "loads a key readable by its owner only"},
	    {0400, 1, "loads a read-only key"},
	};
	char path[256];
	struct webpush_vapid *v;

	path_in_tmp(path, sizeof(path), "vapid.pem");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		chmod(path, cases[i].mode);
		v = webpush_vapid_load(path);
		ok((v != NULL) == cases[i].accept, "vapid_load %s (%04o)",
		   cases[i].name, (unsigned)cases[i].mode);
		webpush_vapid_free(v);
	}
	chmod(path, 0600);
}

static void test_vapid_load_contents(void)
{
	static const struct {
		const char *file;
		const char *name;
	} cases[] = {
	    {"ed25519.pem", "refuses an Ed25519 key"},
	    {"p384.pem", "refuses a P-384 key"},
	    {"enc.pem", "refuses an encrypted key"},
	};
	char path[256], want[128];
	struct webpush_vapid *v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		path_in_tmp(path, sizeof(path), cases[i].file);
		int made = make_key(cases[i].file) == 0;
		v = made ? webpush_vapid_load(path) : NULL;
		ok(made && v == NULL, "vapid_load %s", cases[i].name);
		webpush_vapid_free(v);
	}
	path_in_tmp(path, sizeof(path), "junk.pem");
	v = write_file(path, "not a key\n", 0600) == 0 ? webpush_vapid_load(path)
							 : NULL;
	ok(v == NULL, "vapid_load refuses a file that is no key");
	webpush_vapid_free(v);
	path_in_tmp(path, sizeof(path), "absent.pem");
	ok(webpush_vapid_load(path) == NULL,
	   "vapid_load refuses a missing file");
	ok(webpush_vapid_load(tmpdir) == NULL,
	   "vapid_load refuses a directory");
	path_in_tmp(path, sizeof(path), "compressed.pem");
	v = make_key("compressed.pem") == 0 ? webpush_vapid_load(path) : NULL;
	openssl_public(path, want, sizeof(want));
	ok(v && strlen(want) == 87 &&
	       strcmp(webpush_vapid_public(v), want) == 0,
	   "vapid_load gives a key stored compressed an uncompressed public");
	webpush_vapid_free(v);
}

/* Decodes one base64url JWT segment of n characters into a malloc'd buffer. */
static uint8_t *decode_segment(const char *s, size_t n, size_t *len)
{
	char *copy = strndup(s, n);
	uint8_t *out;

	*len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	out = malloc(*len + 1);
	if (!copy || !out || webpush_decode_key(copy, out, *len) == -1) {
		free(out);
		out = NULL;
	} else {
		out[*len] = '\0';
	}
	free(copy);
	return out;
}

/* Whether o's member key is the string want; false when absent. */
static int json_is(json_t *o, const char *key, const char *want)
{
	const char *got = json_string_value(json_object_get(o, key));

	return got && strcmp(got, want) == 0;
}

static json_t *decode_json_segment(const char *s, size_t n)
{
	size_t len;
	uint8_t *text = decode_segment(s, n, &len);
	json_t *j = text ? json_loadb((const char *)text, len, 0, NULL) : NULL;

	free(text);
	return j;
}

/* Splits "vapid t=H.C.S, k=K" and checks what does not need a verifier. */
static void check_header_shape(const char *hdr, struct webpush_vapid *v)
{
	const char *t = hdr + 8, *dot1, *dot2, *k;
	size_t siglen = 0;
	uint8_t *sig;
	json_t *jh;

	ok(strncmp(hdr, "vapid t=", 8) == 0, "the header starts \"vapid t=\"");
	k = strstr(hdr, ", k=");
	ok(k && strcmp(k + 4, webpush_vapid_public(v)) == 0,
	   "the header ends \", k=\" and the public key");
	dot1 = strchr(t, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	ok(dot1 && dot2 && k && dot2 < k && !strchr(dot2 + 1, '.'),
	   "the token has three parts");
	if (!dot1 || !dot2 || !k)
		return;
	jh = decode_json_segment(t, (size_t)(dot1 - t));
	ok(json_object_size(jh) == 2 && json_is(jh, "typ", "JWT") &&
	       json_is(jh, "alg", "ES256"),
	   "the token header is {\"typ\":\"JWT\",\"alg\":\"ES256\"}");
	json_decref(jh);
	sig = decode_segment(dot2 + 1, (size_t)(k - dot2 - 1), &siglen);
	ok(sig && siglen == 64, "the signature is 64 raw bytes, not DER");
	free(sig);
}

static json_t *header_claims(const char *hdr)
{
	const char *dot1 = strchr(hdr, '.'), *dot2;

	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	return dot2 ? decode_json_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1))
		    : NULL;
}

static void test_vapid_header(struct webpush_vapid *v)
{
	static const struct {
		const char *endpoint, *origin;
	} cases[] = {
	    {"https://fcm.googleapis.com/fcm/send/dE5-x:APA91",
	     "https://fcm.googleapis.com"},
	    {"https://Push.Example.NET:443/up", "https://push.example.net"},
	    {"https://push.example.net:8443/wpush/v2?x=1",
	     "https://push.example.net:8443"},
	    {"https://user:pw@push.example.net/x", "https://push.example.net"},
	    {"https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443"},
	    {"https://push.example.net", "https://push.example.net"},
	    {"http://localhost:80/x#y", "http://localhost"},
	    {"http://localhost:8080/x", "http://localhost:8080"},
	};
	const char *subject = "mailto:admin@example.net";
	time_t now = 1700000000;
	char *hdr;
	json_t *c;

	hdr = webpush_vapid_header(v, cases[0].endpoint, subject, now);
	ok(hdr != NULL, "vapid_header signs for an FCM endpoint");
	if (hdr)
		check_header_shape(hdr, v);
	c = hdr ? header_claims(hdr) : NULL;
	ok(c && json_integer_value(json_object_get(c, "exp")) == now + 43200,
	   "the token expires 12 hours from now");
	ok(json_is(c, "sub", subject), "the token's sub is the contact");
	json_decref(c);
	free(hdr);
	hdr = webpush_vapid_header(v, cases[0].endpoint,
				   "https://example.net/contact", now);
	c = hdr ? header_claims(hdr) : NULL;
	ok(json_is(c, "sub", "https://example.net/contact"),
	   "vapid_header takes an https: contact");
	json_decref(c);
	free(hdr);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hdr = webpush_vapid_header(v, cases[i].endpoint, subject, now);
		c = hdr ? header_claims(hdr) : NULL;
		ok(json_is(c, "aud", cases[i].origin), "the aud of %s is %s",
		   cases[i].endpoint, cases[i].origin);
		json_decref(c);
		free(hdr);
	}
}

static void test_vapid_header_refusals(struct webpush_vapid *v)
{
	static const struct {
		const char *endpoint, *subject, *name;
	} cases[] = {
	    {"push.example.net/x", "mailto:a@b", "an endpoint without scheme"},
	    {"https:///x", "mailto:a@b", "an endpoint without host"},
	    {"https://:443/x", "mailto:a@b", "an endpoint with only a port"},
	    {"ht tp://push.example.net/", "mailto:a@b", "a malformed scheme"},
	    {"https://push.example.net/", "admin@example.net",
	     "a contact that is not a mailto: or https: URI"},
	    {"https://push.example.net/", NULL, "a missing contact"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *hdr = webpush_vapid_header(v, cases[i].endpoint,
						 cases[i].subject, 0);
		ok(hdr == NULL, "vapid_header refuses %s", cases[i].name);
		free(hdr);
	}
}

static void test_vapid(void)
{
	char path[256];
	uint8_t pub[65];
	struct webpush_vapid *v;

	test_vapid_generate();
	test_vapid_load_modes();
	test_vapid_load_contents();
	path_in_tmp(path, sizeof(path), "vapid.pem");
	v = webpush_vapid_load(path);
	ok(v != NULL, "vapid_load reads the generated key");
	if (!v)
		return;
	ok(strlen(webpush_vapid_public(v)) == 87 &&
	       webpush_decode_key(webpush_vapid_public(v), pub, 65) == 0 &&
	       pub[0] == 0x04,
	   "vapid_public is an unpadded base64url uncompressed point");
	test_vapid_header(v);
	test_vapid_header_refusals(v);
	webpush_vapid_free(v);
}

static void remove_tmpdir(void)
{
	static const char *const names[] = {
	    "vapid.pem", "link.pem", "ed25519.pem",    "p384.pem",
	    "enc.pem",	 "junk.pem", "compressed.pem",
	};
	char path[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_in_tmp(path, sizeof(path), names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

/* The plaintext from argv, or from stdin when it is "-" (binary-safe). */
static uint8_t *read_plain(const char *arg, size_t *len)
{
	size_t cap = WEBPUSH_MAX_PLAIN + 2;
	uint8_t *buf = malloc(cap);

	if (!buf)
		return NULL;
	if (strcmp(arg, "-") == 0) {
		*len = fread(buf, 1, cap, stdin);
	} else {
		*len = strlen(arg) < cap ? strlen(arg) : cap;
		memcpy(buf, arg, *len);
	}
	return buf;
}

/* --encrypt P256DH AUTH TEXT|-: prints the body as hex. */
static int serve_encrypt(char **argv)
{
	uint8_t ua[65], auth[16], *plain, *out;
	size_t len, outlen;
	int r = 1;

	if (webpush_decode_key(argv[0], ua, sizeof(ua)) == -1 ||
	    webpush_decode_key(argv[1], auth, sizeof(auth)) == -1) {
		fprintf(stderr, "bad p256dh or auth\n");
		return 2;
	}
	if (!(plain = read_plain(argv[2], &len)))
		return 1;
	if (webpush_encrypt(plain, len, ua, auth, &out, &outlen) == 0) {
		for (size_t i = 0; i < outlen; i++)
			printf("%02x", out[i]);
		printf("\n");
		free(out);
		r = 0;
	}
	free(plain);
	return r;
}

/* --vapid KEYFILE ENDPOINT SUBJECT: prints the Authorization value. */
static int serve_vapid(char **argv)
{
	struct webpush_vapid *v = webpush_vapid_load(argv[0]);
	char *hdr =
	    v ? webpush_vapid_header(v, argv[1], argv[2], time(NULL)) : NULL;

	if (hdr)
		printf("%s\n", hdr);
	free(hdr);
	webpush_vapid_free(v);
	return hdr ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--encrypt") == 0)
		return serve_encrypt(argv + 2);
	if (argc == 5 && strcmp(argv[1], "--vapid") == 0)
		return serve_vapid(argv + 2);
	if (argc == 3 && strcmp(argv[1], "--generate") == 0)
		return webpush_vapid_generate(argv[2]) == 0 ? 0 : 1;
	/* Refusals are logged by design; keep them out of the TAP stream. */
	log_open("test_webpush", "error", NULL);
	umask(022);
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! cannot make a temporary directory\n");
		return 1;
	}
	test_decode_key();
	test_encrypt_limits();
	test_encrypt_refuses_points();
	test_encrypt_layout();
	test_vapid();
	remove_tmpdir();
	return tap_done();
}

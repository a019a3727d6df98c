/*
 * keygen.c: talkproxy-keygen, the admin command that creates the daemon's
 * key files. It never replaces an existing file: clients and app servers
 * hold the public halves, and a new master key would orphan every sealed
 * record. Prints what others need to know (the public key), never a secret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "seal.h"
#include "webpush.h"

static int keygen_usage(void)
{
	fprintf(stderr,
		"usage: talkproxy-keygen vapid FILE    Web Push (VAPID) key pair\n"
		"       talkproxy-keygen webhook FILE  webhook signing key\n"
		"       talkproxy-keygen master FILE   master key for sealed state\n"
		"Creates FILE (mode 0600, never over an existing file) and prints\n"
		"the public key where there is one. Run it as the daemon's user.\n");
	return 2;
}

static int keygen_vapid(const char *path)
{
	struct webpush_vapid *v;

	if (webpush_vapid_generate(path) == -1 || !(v = webpush_vapid_load(path)))
		return 1;
	printf("vapid public key (applicationServerKey): %s\n",
	       webpush_vapid_public(v));
	webpush_vapid_free(v);
	return 0;
}

static int keygen_webhook(const char *path)
{
	uint8_t seed[SEAL_KEY_BYTES], pk[SEAL_SIGN_PUBLIC_BYTES];
	char *b64;

	if (seal_keyfile_create(path, "webhook key") == -1 ||
	    seal_keyfile_load(path, "webhook key", seed) == -1)
		return 1;
	seal_sign_public(pk, seed);
	seal_wipe(seed, sizeof(seed));
	if (!(b64 = seal_base64(pk, sizeof(pk), SEAL_B64URL)))
		return 1;
	printf("webhook public key (Ed25519, base64url): %s\n", b64);
	free(b64);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return keygen_usage();
	if (log_open("talkproxy-keygen", "info", "") == -1 || seal_init() == -1)
		return 1;
	umask(077);
	if (strcmp(argv[1], "vapid") == 0)
		return keygen_vapid(argv[2]);
	if (strcmp(argv[1], "webhook") == 0)
		return keygen_webhook(argv[2]);
	if (strcmp(argv[1], "master") == 0)
		return seal_keyfile_create(argv[2], "master key") == -1 ? 1 : 0;
	return keygen_usage();
}

/* tlsread.c: SSL_read() wrapped to note input left inside OpenSSL
 * (tlsread.h). */
#include "tlsread.h"

#include <dlfcn.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stddef.h>

typedef int (*tlsread_fn)(SSL *, void *, int);

static tlsread_fn tlsread_real;
static pthread_once_t tlsread_once = PTHREAD_ONCE_INIT;
static _Thread_local int tlsread_seen;     /* a read came through here */
static _Thread_local int tlsread_leftover; /* and left input pending */

static void tlsread_find(void)
{
	/* POSIX allows converting dlsym's void * to a function pointer. */
	*(void **)&tlsread_real = dlsym(RTLD_NEXT, "SSL_read");
}

int SSL_read(SSL *ssl, void *buf, int num)
{
	int r;

	pthread_once(&tlsread_once, tlsread_find);
	if (!tlsread_real)
		return -1; /* cannot happen while libssl is linked */
	r = tlsread_real(ssl, buf, num);
	tlsread_seen = 1;
	/* SSL_has_pending, not SSL_pending: also bytes of a record not yet
	 * decrypted, should anything turn read-ahead on. */
	if (SSL_has_pending(ssl))
		tlsread_leftover = 1;
	return r;
}

int tlsread_leftover_take(void)
{
	int r = tlsread_seen ? tlsread_leftover : -1;

	tlsread_leftover = 0;
	return r;
}

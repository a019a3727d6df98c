/* tlsmem.c: SSL_MODE_RELEASE_BUFFERS for every SSL object (tlsmem.h). */
#include "tlsmem.h"

#include <dlfcn.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stddef.h>

typedef SSL *(*tlsmem_ssl_new_fn)(SSL_CTX *);

static tlsmem_ssl_new_fn tlsmem_real;
static pthread_once_t tlsmem_once = PTHREAD_ONCE_INIT;

static void tlsmem_find(void)
{
	/* POSIX allows converting dlsym's void * to a function pointer. */
	*(void **)&tlsmem_real = dlsym(RTLD_NEXT, "SSL_new");
}

SSL *SSL_new(SSL_CTX *ctx)
{
	SSL *ssl;

	pthread_once(&tlsmem_once, tlsmem_find);
	if (!tlsmem_real)
		return NULL; /* cannot happen while libssl is linked */
	ssl = tlsmem_real(ctx);
	if (ssl)
		SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	return ssl;
}

int tlsmem_active(void)
{
	pthread_once(&tlsmem_once, tlsmem_find);
	return tlsmem_real != NULL;
}

/*
 * tlsmem.h: OpenSSL's record buffers released while connections idle.
 *
 * OpenSSL keeps a read and a write buffer of about 16.5 KiB each for every
 * connection, for its whole life; almost all of the daemon's streams sit
 * idle almost all of the time, and 33 KiB each was a third of the memory
 * a session costs. SSL_MODE_RELEASE_BUFFERS frees them between records,
 * but libstrophe 0.12 builds its SSL objects itself and sets no such
 * mode. tlsmem.c therefore defines SSL_new(): the executable's definition
 * comes first in symbol lookup, so libstrophe's (and libcurl's) calls
 * land there; it calls OpenSSL's own SSL_new (dlsym RTLD_NEXT) and sets
 * the mode on the result. Nothing else changes.
 */
#ifndef TALKPROXY_TLSMEM_H
#define TALKPROXY_TLSMEM_H

/* 1 when SSL objects get SSL_MODE_RELEASE_BUFFERS (OpenSSL's SSL_new was
 * found behind ours), for the start-up log. */
int tlsmem_active(void);

#endif

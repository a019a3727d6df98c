/*
 * tlsread.h: whether OpenSSL still holds input after a read.
 *
 * libstrophe reads at most 4 KiB per connection and xmpp_run_once(), and
 * a TLS record carries up to 16 KiB: the rest waits inside OpenSSL, where
 * no socket (and so no epoll) shows it, until the context runs again.
 * Running every shard a few more times after each input covered that, at
 * the price of a select() and a walk over all of the shard's streams per
 * run, for the small records that are almost all of the traffic (with 900
 * sessions a daemon, a fifth of the loop thread's work per message).
 *
 * tlsread.c defines SSL_read(): the executable's definition comes first in
 * symbol lookup, so libstrophe's calls land there. It calls OpenSSL's own
 * (dlsym RTLD_NEXT) and notes, per thread, whether the connection it read
 * has more input pending. Nothing else changes, and libcurl's reads on the
 * push thread only note their own thread's flag.
 */
#ifndef TALKPROXY_TLSREAD_H
#define TALKPROXY_TLSREAD_H

/*
 * 1 when a read on this thread since the last call left input inside
 * OpenSSL, 0 when none did, -1 when it cannot tell: no read on this thread
 * has come through the wrapper yet (a libstrophe that bypassed it is never
 * trusted). Clears the note.
 */
int tlsread_leftover_take(void);

#endif

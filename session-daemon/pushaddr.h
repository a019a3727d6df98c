/*
 * pushaddr.h: whether a push endpoint may be contacted. A registered URL is
 * checked for shape before it is stored; the address curl is about to connect
 * to is checked again at connect time, after DNS. Sending, retries and the
 * rest of the curl handle belong to the push module, the only includer.
 */
#ifndef TALKPROXY_PUSHADDR_H
#define TALKPROXY_PUSHADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include <curl/curl.h>

#define PUSHADDR_URL_MAX 2048 /* bytes, a registered URL's hard cap */

/*
 * Returns 0 when url may be stored as a push endpoint: "https://" (or
 * "http://" when allow_http), a host that is a DNS name, an IPv4 literal or
 * a bracketed IPv6 literal without zone id, an optional port 1..65535, no
 * userinfo, no fragment, no whitespace, control or non-ASCII byte, at most
 * PUSHADDR_URL_MAX bytes. Returns -1 otherwise and writes a short reason to
 * why (truncated to whylen; why may be NULL). Resolves nothing: the address
 * is judged by pushaddr_opensocket() when the push is sent.
 */
int pushaddr_check_url(const char *url, int allow_http, char *why,
		       size_t whylen);

/*
 * Returns NULL when the IPv4 or IPv6 address sa (len bytes) is global
 * unicast, or a static reason naming the range that refuses it, such as
 * "private-use (10.0.0.0/8)". Addresses that embed an IPv4 address
 * (v4-mapped, v4-compatible, NAT64, 6to4) are judged by that IPv4 address.
 * allow_loopback lets 127.0.0.0/8, ::1 and v4-mapped loopback through, for
 * tests; an embedding that reaches loopback through a relay stays refused.
 * Any other family, or a short len, is refused.
 */
const char *pushaddr_refusal(const struct sockaddr *sa, socklen_t len,
			     int allow_loopback);
/* Returns 1 when pushaddr_refusal() finds no reason, 0 otherwise. */
int pushaddr_allowed(const struct sockaddr *sa, socklen_t len,
		     int allow_loopback);

/*
 * A CURLOPT_OPENSOCKETFUNCTION: clientp (CURLOPT_OPENSOCKETDATA) points to
 * an int allow_loopback that lives as long as the easy handle. Returns
 * CURL_SOCKET_BAD for a refused address, so curl fails the attempt with
 * CURLE_COULDNT_CONNECT before any packet is sent; otherwise a new socket.
 * Logs nothing: pushaddr_refusal() gives the reason if push wants one.
 *
 * Because curl calls this after DNS with the very address it connects to,
 * DNS rebinding cannot help. The check holds only if push also sets:
 * - CURLOPT_FOLLOWLOCATION 0: no redirects, as the design says.
 * - CURLOPT_PROTOCOLS_STR "https" ("http,https" in test mode), and the same
 *   in CURLOPT_REDIR_PROTOCOLS_STR (curl >= 7.85; older curl: the
 *   CURLOPT_PROTOCOLS bitmask).
 * - CURLOPT_PROXY "": otherwise curl honours http_proxy, https_proxy and
 *   all_proxy from the environment and this judges the proxy, not the
 *   endpoint.
 * Connection reuse is safe: curl reuses only connections from its own pool,
 * each opened through this callback, so a reused connection goes to an
 * address already checked. Do not share a pool (CURLSH) with handles that
 * lack this callback.
 */
curl_socket_t pushaddr_opensocket(void *clientp, curlsocktype purpose,
				  struct curl_sockaddr *address);

#endif

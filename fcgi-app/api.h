/*
 * api.h: the JSON API as one table: each call's path, method, whether it
 * needs a session, its fields, and any rule across fields or rework of the
 * daemon's answer. Routing, body checks, authentication and forwarding to
 * the daemon all come from that table. Knows nothing of FastCGI: main.c
 * turns a FastCGI request into a struct api_request.
 */
#ifndef TALKPROXY_API_H
#define TALKPROXY_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct bus;
struct api_call;

struct api_request {
	const char *method;
	const char *path; /* without the query string */
	const char *content_type;
	long content_length; /* -1 when absent */
	const char *authorization;
	const char *remote_addr;
	const char *scheme; /* "http" or "https" */
	const char *host;   /* Host header */
	const char *body;
	size_t body_len;
};

/*
 * A JSON answer (body), or, when type is set, raw bytes (images): data is
 * then owned and body NULL. Binary answers always go out with nosniff and
 * a CSP that forbids everything, as they come from other people.
 */
struct api_response {
	int status;
	json_t *body;      /* owned */
	const char *allow; /* Allow header for 405, static */
	long long retry_after; /* Retry-After seconds for 429, 0: none */
	const char *type;  /* Content-Type of data, static; NULL: JSON */
	uint8_t *data;     /* owned */
	size_t data_len;
	const char *cache_control; /* static; for data only */
};

/* Frees what resp owns; it may be reused as a zeroed response after. */
void api_response_clear(struct api_response *resp);

/*
 * Finds the call for path and method. Returns it, or NULL with a 404/405
 * response filled in. path must already have the base path removed.
 */
const struct api_call *api_route(const char *path, const char *method,
				 struct api_response *resp);

/* 1 when the call takes a request body (POST), 0 for the GET resources,
 * whose body, if any, is never read. */
int api_takes_body(const struct api_call *call);

/*
 * Checks what can be checked before the body is read: content type and
 * declared length. Returns 0, or -1 with a 413/415 response filled in.
 */
int api_precheck(const struct api_call *call, const struct config *cfg,
		 const struct api_request *req, struct api_response *resp);

/* Handles a routed, prechecked request; always fills resp. */
void api_handle(const struct api_call *call, const struct config *cfg,
		struct bus **bus, const struct api_request *req,
		struct api_response *resp);

#endif

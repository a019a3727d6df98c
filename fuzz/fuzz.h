/*
 * fuzz.h: what every harness in fuzz/ shares. A harness is one
 * LLVMFuzzerTestOneInput() over the project's real functions; libFuzzer
 * supplies main() in a --enable-fuzzing build, replay.c in any other, so
 * the same file is a fuzzer there and a corpus replay test here.
 */
#ifndef TALKPROXY_FUZZ_H
#define TALKPROXY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Called once before the first input; may be a no-op. Returns 0. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
/* Runs one input; always returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A property the code under test must keep, checked on every input: when
 * it fails, the harness aborts, which libFuzzer records as a crash (and
 * replay as a failed test), with the reason on stderr.
 */
#define FUZZ_ASSERT(cond, what)                                                \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: property violated: %s (%s)\n", \
				__FILE__, __LINE__, what, #cond);              \
			abort();                                               \
		}                                                              \
	} while (0)

/* A NUL-terminated copy of n bytes (cut at the first NUL, as a C string
 * from the network would be), or abort on allocation failure. */
static inline char *fuzz_strndup(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/*
 * Takes the next piece of *data up to (not including) the byte sep, and
 * moves past the separator. Returns a malloc'd C string, or NULL when no
 * bytes are left at all.
 */
static inline char *fuzz_take(const uint8_t **data, size_t *size, int sep)
{
	const uint8_t *end;
	size_t n;
	char *s;

	if (*size == 0)
		return NULL;
	end = memchr(*data, sep, *size);
	n = end ? (size_t)(end - *data) : *size;
	s = fuzz_strndup(*data, n);
	*data += end ? n + 1 : n;
	*size -= end ? n + 1 : n;
	return s;
}

#endif

/*
 * replay.c: the main() of a harness in a build without libFuzzer. Runs
 * LLVMFuzzerTestOneInput() once on every file of the directories (and on
 * the files) named on the command line, or of the harness's seed corpus
 * (FUZZ_CORPUS) when none is named, and prints TAP: make check then keeps
 * every harness compiling and passing over its corpus in the plain and
 * sanitizer builds. A crash or a violated property ends the run early,
 * which the TAP driver reports as a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_CORPUS
#error "FUZZ_CORPUS: the seed corpus directory replayed by default"
#endif

struct replay_list {
	char **paths;
	size_t n, cap;
};

static void replay_add(struct replay_list *l, const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->paths = realloc(l->paths, l->cap * sizeof(*l->paths));
		if (!l->paths)
			abort();
	}
	if (!(l->paths[l->n] = malloc(len)))
		abort();
	snprintf(l->paths[l->n], len, "%s%s%s", dir, *dir ? "/" : "", name);
	l->n++;
}

static int replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds path, or the regular files directly inside it. 0, or -1. */
static int replay_collect(struct replay_list *l, const char *path)
{
	struct stat st;
	struct dirent *e;
	DIR *d;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		replay_add(l, "", path);
		return 0;
	}
	if (!(d = opendir(path))) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char full[4096];
		snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
		if (e->d_name[0] != '.' && stat(full, &st) == 0 &&
		    S_ISREG(st.st_mode))
			replay_add(l, path, e->d_name);
	}
	closedir(d);
	return 0;
}

/* The whole file in an exact-size buffer, so that a sanitizer sees any
 * read past the input's end. NULL (reported) when it cannot be read. */
static uint8_t *replay_read(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *exact;
	size_t len = 0, cap = 0, got;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	do {
		if (len == cap) {
			cap = cap ? 2 * cap : 4096;
			if (!(buf = realloc(buf, cap)))
				abort();
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got > 0);
	fclose(f);
	if (!(exact = malloc(len ? len : 1)))
		abort();
	memcpy(exact, buf, len);
	free(buf);
	*size = len;
	return exact;
}

int main(int argc, char **argv)
{
	struct replay_list l = {0};
	int bad = 0;

	for (int i = 1; i < argc; i++)
		if (replay_collect(&l, argv[i]) == -1)
			bad = 1;
	if (argc == 1 && replay_collect(&l, FUZZ_CORPUS) == -1)
		bad = 1;
	if (bad || l.n == 0) {
		printf("1..0 # SKIP no inputs\n");
		return bad ? 1 : 0;
	}
	qsort(l.paths, l.n, sizeof(*l.paths), replay_cmp);
	LLVMFuzzerInitialize(&argc, &argv);
	printf("1..%zu\n", l.n);
	for (size_t i = 0; i < l.n; i++) {
		size_t size = 0;
		uint8_t *data = replay_read(l.paths[i], &size);
		/* Announced first: if the input crashes, the log names it. */
		fprintf(stderr, "replaying %s\n", l.paths[i]);
		if (data)
			LLVMFuzzerTestOneInput(data, size);
		printf("%sok %zu - %s (%zu bytes)\n", data ? "" : "not ", i + 1,
		       l.paths[i], size);
		fflush(stdout);
		free(data);
		free(l.paths[i]);
	}
	free(l.paths);
	return 0;
}

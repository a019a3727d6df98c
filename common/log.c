/* log.c: timestamped log lines to a file or stderr, safe across threads. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const log_names[] = {"error", "warning", "info", "debug"};

static struct {
	char ident[32];
	enum log_level level;
	FILE *out;
	pthread_mutex_t lock;
} log_state = {"talkproxy", LOG_INFO, NULL, PTHREAD_MUTEX_INITIALIZER};

static int log_parse_level(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcmp(name, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

int log_open(const char *ident, const char *level, const char *file)
{
	snprintf(log_state.ident, sizeof(log_state.ident), "%s", ident);
	if (level && log_parse_level(level, &log_state.level) == -1)
		log_state.level = LOG_INFO;
	if (!file || !*file)
		return 0;
	FILE *f = fopen(file, "a");
	if (!f) {
		log_error("cannot open log file %s: %m", file);
		return -1;
	}
	/* Line-buffered so a crash or kill -9 loses at most one line. */
	setvbuf(f, NULL, _IOLBF, 0);
	log_state.out = f;
	return 0;
}

void log_close(void)
{
	if (log_state.out)
		fclose(log_state.out);
	log_state.out = NULL;
}

int log_enabled(enum log_level level)
{
	return level <= log_state.level;
}

__attribute__((format(printf, 2, 0))) static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	FILE *out = log_state.out ? log_state.out : stderr;
	pthread_mutex_lock(&log_state.lock);
	fprintf(out, "%s.%03ldZ %s[%d] %s: ", stamp, ts.tv_nsec / 1000000,
		log_state.ident, (int)getpid(), log_names[level]);
	vfprintf(out, fmt, ap);
	fputc('\n', out);
	pthread_mutex_unlock(&log_state.lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

/*
 * log.h: one logger for both programs. Lines carry a timestamp, the program
 * name and pid, and a level; they go to a file or stderr. Callers never pass
 * secrets (passwords, tokens, keys, message bodies) to these functions.
 */
#ifndef TALKPROXY_LOG_H
#define TALKPROXY_LOG_H

enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* Returns 0, or -1 when the file cannot be opened (logging stays on stderr). */
int log_open(const char *ident, const char *level, const char *file);
void log_close(void);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Logs and exits: only at start-up or for a broken invariant. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_enabled(LOG_DEBUG))                                    \
			log_msg(LOG_DEBUG, __VA_ARGS__);                       \
	} while (0)

#endif

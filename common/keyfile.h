/*
 * keyfile.h: the files that hold secrets (the master key, the VAPID key, the
 * webhook signing key). Each is created by an admin command, never over an
 * existing file or through a planted link, and read only while no one but
 * its owner can read or write it. What is inside is the caller's business.
 */
#ifndef TALKPROXY_KEYFILE_H
#define TALKPROXY_KEYFILE_H

/*
 * Opens path read-only when it is a regular file private to its owner
 * (no group or other permission bits). Returns the descriptor, or -1 after
 * logging why, naming what (e.g. "VAPID key") and the path.
 */
int keyfile_open_private(const char *path, const char *what);

/* Creates path with mode 0600 (O_EXCL). Returns the descriptor or -1 (logged). */
int keyfile_create(const char *path, const char *what);

#endif

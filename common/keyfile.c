/* keyfile.c: creating and opening secret files (keyfile.h). */
#include "keyfile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int keyfile_open_private(const char *path, const char *what)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd == -1) {
		log_error("cannot open %s %s: %m", what, path);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_error("%s %s is not a regular file", what, path);
	} else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		log_error("%s %s has mode %04o, open to group or others; "
			  "refusing it (chmod 600 %s)",
			  what, path, (unsigned)(st.st_mode & 07777), path);
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

int keyfile_create(const char *path, const char *what)
{
	/* O_EXCL: clients and peers may hold the old public half, so never
	 * replace a key, and never write through a link planted at path. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
		      0600);

	if (fd == -1)
		log_error("cannot create %s %s: %m", what, path);
	return fd;
}

/* A library loaded after the shim: calls fchmodat itself, returns errno or 0. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

int late_chmod(const char *path, int mode) { return fchmodat(AT_FDCWD, path, (mode_t)mode, 0) ? errno : 0; }

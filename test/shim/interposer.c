/* Another LD_PRELOAD interposer of fchmodat (as fakeroot is): always fails with EINVAL. */
#include <errno.h>
#include <sys/stat.h>

int fchmodat(int dirfd, const char *path, mode_t mode, int flags) {
  (void)dirfd, (void)path, (void)mode, (void)flags;
  errno = EINVAL;
  return -1;
}

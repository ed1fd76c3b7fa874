/* Test driver: makes one wrapped call and prints its result, e.g. "rc=-1 errno=EPERM".
 *   calls chmod|fchmodat|fchmod PATH OCTAL
 *   calls utimensat|futimens|utimes|utime|lutimes|futimesat PATH OFFSET   (explicit time now+OFFSET s)
 *   calls touch PATH                                 (utimensat(..., NULL, 0))
 *   calls child                                      (prints LD_PRELOAD as a child /bin/sh sees it)
 *   calls replace SRC DST STATUS                     (rename SRC over DST, then exit(STATUS))
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

static const char *name(int e) {
  switch (e) {
    case 0: return "0";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    default: return "other";
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *op = argv[1];
  if (!strcmp(op, "child")) {
    fflush(stdout);
    execl("/bin/sh", "sh", "-c", "echo \"LD_PRELOAD=${LD_PRELOAD-<unset>}\"", (char *)NULL);
    return 127;
  }
  if (!strcmp(op, "replace")) {
    if (rename(argv[2], argv[3]) != 0) return 99;
    exit(atoi(argv[4]));
  }
  const char *path = argv[2];
  int rc = 0, fd = -1;
  errno = 0;
  if (!strcmp(op, "chmod") || !strcmp(op, "fchmodat") || !strcmp(op, "fchmod")) {
    mode_t mode = (mode_t)strtol(argv[3], NULL, 8);
    if (!strcmp(op, "chmod")) rc = chmod(path, mode);
    else if (!strcmp(op, "fchmodat")) rc = fchmodat(AT_FDCWD, path, mode, 0);
    else {
      fd = open(path, O_RDONLY);
      errno = 0;
      rc = fchmod(fd, mode);
    }
  } else if (!strcmp(op, "touch")) {
    rc = utimensat(AT_FDCWD, path, NULL, 0);
  } else {
    time_t t = time(NULL) + atol(argv[3]);
    struct timespec ts[2] = {{0, UTIME_OMIT}, {t, 0}};
    struct timeval tv[2] = {{t, 0}, {t, 0}};
    struct utimbuf ub = {t, t};
    if (!strcmp(op, "utimensat")) rc = utimensat(AT_FDCWD, path, ts, 0);
    else if (!strcmp(op, "futimens")) {
      fd = open(path, O_RDONLY);
      errno = 0;
      rc = futimens(fd, ts);
    } else if (!strcmp(op, "utimes")) rc = utimes(path, tv);
    else if (!strcmp(op, "utime")) rc = utime(path, &ub);
    else if (!strcmp(op, "lutimes")) rc = lutimes(path, tv);
    else if (!strcmp(op, "futimesat")) rc = futimesat(AT_FDCWD, path, tv);
    else return 2;
  }
  printf("rc=%d errno=%s\n", rc, name(rc ? errno : 0));
  return 0;
}

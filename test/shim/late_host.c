/* Test host for the library position: dlopen()s a library carrying the shim, then
 *   - calls fchmodat itself (its GOT is read-only after relocation: linked with -z now),
 *   - dlopen()s a library loaded later (by path, or by bare name: argv[2] without a slash) and calls
 *     fchmodat through it.
 *   - dlclose()s the first library and calls fchmodat itself again (the shim must stay loaded).
 * Prints "self=<errno name> late=<errno name> closed=<errno name>". Usage: late_host SHIMLIB LATELIB DIR MODE */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *name(int e) { return e == 0 ? "0" : e == EPERM ? "EPERM" : "other"; }

int main(int argc, char **argv) {
  if (argc < 5) return 2;
  mode_t mode = (mode_t)strtol(argv[4], NULL, 8);
  void *first = dlopen(argv[1], RTLD_NOW);
  if (!first) return fprintf(stderr, "%s\n", dlerror()), 2;
  int self = fchmodat(AT_FDCWD, argv[3], mode, 0) ? errno : 0;
  void *late = dlopen(argv[2], RTLD_NOW);
  if (!late) return fprintf(stderr, "%s\n", dlerror()), 2;
  int (*late_chmod)(const char *, int) = (int (*)(const char *, int))dlsym(late, "late_chmod");
  int late_rc = late_chmod(argv[3], (int)mode);
  dlclose(first);
  int closed = fchmodat(AT_FDCWD, argv[3], mode, 0) ? errno : 0;
  printf("self=%s late=%s closed=%s\n", name(self), name(late_rc), name(closed));
  return 0;
}

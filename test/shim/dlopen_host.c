/* Test host: dlopen()s a library (as Python's ctypes does) and runs the stand-in's install step. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) {
    fprintf(stderr, "%s\n", dlerror());
    return 2;
  }
  int (*install)(const char *) = (int (*)(const char *))dlsym(h, "standin_install");
  fflush(stdout);
  return install ? install(argv[2]) : 2;
}

// A stand-in for libmamba, for mambapatch's demo and tests. It makes the same libstdc++ calls that
// libmamba makes in a shared package cache, so a second user hits the same kernel refusals:
//   STANDIN_MAJOR=1 (libmamba 0.26 .. 1.1.x): after a 304, fs::last_write_time(json, clock::now())
//                   -> utimensat(AT_FDCWD, json, {UTIME_OMIT, now}, 0)
//   STANDIN_MAJOR=2 (libmamba 2.0 .. 2.8.1): create_cache_dir: fs::permissions(cache, 0775, replace),
//                   then setgid added with the error_code overload -> fchmodat(AT_FDCWD, cache, ...)
// Both then "touch" the index the 1.2+ way: utimensat(AT_FDCWD, json, NULL, 0), allowed for writers.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>

#ifndef STANDIN_MAJOR
#error "define STANDIN_MAJOR to 1 or 2"
#endif

namespace fs = std::filesystem;

namespace {

const char *kIndex = "497deca9.json";  // a channel index cache file, named like libmamba's

void create_cache_dir(const fs::path &cache) {
  if (!fs::exists(cache)) fs::create_directories(cache);
  fs::permissions(cache, fs::perms::owner_all | fs::perms::group_all | fs::perms::others_read |
                             fs::perms::others_exec,
                  fs::perm_options::replace);
  std::error_code ec;
  fs::permissions(cache, fs::perms::set_gid, fs::perm_options::add, ec);  // ignored, as libmamba does
}

void refresh_index(const fs::path &json) {
  // 1.x: "the server said 304 Not Modified: mark the cached index as fresh"
  fs::last_write_time(json, fs::file_time_type::clock::now());
}

void touch_index(const fs::path &json) {
  if (::utimensat(AT_FDCWD, json.c_str(), nullptr, 0) != 0)
    throw fs::filesystem_error("cannot touch", json, std::error_code(errno, std::generic_category()));
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int standin_major(void) { return STANDIN_MAJOR; }

// Runs the part of `mamba install` that fails in a shared prefix. Returns the process exit status
// mamba would have, printing mamba's message on failure.
extern "C" __attribute__((visibility("default"))) int standin_install(const char *prefix) {
  const fs::path cache = fs::path(prefix) / "pkgs" / "cache";
  const fs::path json = cache / kIndex;
  try {
#if STANDIN_MAJOR >= 2
    create_cache_dir(cache);
#else
    refresh_index(json);
#endif
    touch_index(json);
  } catch (const std::exception &e) {
#if STANDIN_MAJOR >= 2
    std::fprintf(stderr, "critical libmamba %s\n", e.what());
#else
    std::fprintf(stderr, "%s\n", e.what());
#endif
    return 1;
  }
  std::printf("mamba %d.x stand-in: install finished\n", STANDIN_MAJOR);
  return 0;
}

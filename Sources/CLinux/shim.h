#ifndef WEBHOOK_CLINUX_SHIM_H
#define WEBHOOK_CLINUX_SHIM_H

// Linux interfaces the Glibc module does not export: the event loop's epoll and eventfd,
// inotify for the state dir, advisory file locks, malloc_trim. Empty elsewhere, so the module still
// builds on macOS (where only Sources/Platform imports it, under canImport(Glibc)).
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/socket.h>

// accept4 is a GNU extension that the Glibc module hides without _GNU_SOURCE.
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

// Naming threads is a GNU extension too; names show in `top -H` and `perf`.
#include <pthread.h>
extern int pthread_setname_np(pthread_t thread, const char *name);

// A file made ahead without a name (O_TMPFILE, a GNU name the Glibc module leaves out),
// named later through /proc/self/fd (RotatingLineFile's next generation).
#include <fcntl.h>
static inline int webhook_open_unnamed(const char *directory, mode_t mode) {
    return open(directory, __O_TMPFILE | __O_DIRECTORY | O_RDWR | O_APPEND | O_CLOEXEC, mode);
}

// Handing the heap's free pages back after reading a whole event log (FreedMemory).
#include <malloc.h>

// The profile-guided build (scripts/build-optimized) first runs a build that counts what
// runs. LLVM's profile runtime writes those counts from an exit handler, which the server's
// `_exit` skips, so the server writes them itself. Weak: in every other build the runtime is
// not linked, the symbol is null and this does nothing.
extern int __llvm_profile_write_file(void) __attribute__((weak));
static inline void webhook_write_profile_counts(void) {
    if (__llvm_profile_write_file) __llvm_profile_write_file();
}
#endif

#endif

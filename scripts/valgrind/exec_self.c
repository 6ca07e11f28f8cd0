/* Preloaded into flotilla's tests when they run under valgrind --trace-children=yes.
 *
 * flotilla starts its child processes by re-executing the running program through the link
 * /proc/self/exe. In a process that valgrind runs, that link names valgrind's own tool
 * binary, so valgrind, following the exec, would try to load itself as the child and fail.
 * Here execve and execvp resolve the link first (valgrind answers readlink on it with the
 * real program's path), so that valgrind follows the child into the same program. Nothing
 * else changes: other paths are passed through untouched.
 *
 * Both wrappers run in a freshly forked child before exec: they only call readlink and the
 * real functions, resolved once at load time, so they stay async-signal-safe. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <unistd.h>

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execvp_fn)(const char *, char *const[]);

static execve_fn real_execve;
static execvp_fn real_execvp;

__attribute__((constructor)) static void resolve_real_functions(void) {
    real_execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
    real_execvp = (execvp_fn)dlsym(RTLD_NEXT, "execvp");
}

/* `path`, or the target of /proc/self/exe in `buf` if that is what `path` names. */
static const char *resolved(const char *path, char *buf, size_t len) {
    if (path == NULL || strcmp(path, "/proc/self/exe") != 0) {
        return path;
    }
    ssize_t n = readlink(path, buf, len - 1);
    if (n <= 0) {
        return path;
    }
    buf[n] = '\0';
    return buf;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
    char buf[4096];
    return real_execve(resolved(path, buf, sizeof buf), argv, envp);
}

int execvp(const char *file, char *const argv[]) {
    char buf[4096];
    return real_execvp(resolved(file, buf, sizeof buf), argv);
}

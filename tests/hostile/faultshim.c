/* LD_PRELOAD fault injection for the checkpoint atomicity test. Driven by
 * BALM_FAULT:
 *   fsync-eio   every fsync() fails with EIO (a disk that cannot persist)
 *   fsync-kill  the first fsync() kills the process with SIGKILL, i.e. a run
 *               killed in the middle of a save, after the data was written
 *               to the temporary file but before the rename
 *   rename-eio  rename() fails with EIO
 * Anything else (or unset): no fault. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int mode_is(const char *m)
{
    const char *v = getenv("BALM_FAULT");
    return v && strcmp(v, m) == 0;
}

int fsync(int fd)
{
    if (mode_is("fsync-eio")) {
        errno = EIO;
        return -1;
    }
    if (mode_is("fsync-kill"))
        raise(SIGKILL);
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real ? real(fd) : 0;
}

int rename(const char *a, const char *b)
{
    if (mode_is("rename-eio")) {
        errno = EIO;
        return -1;
    }
    int (*real)(const char *, const char *) =
        (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(a, b);
}

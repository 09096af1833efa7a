/* wasi_compat.c - WASI only: small POSIX pieces wasi-libc lacks (see wasi_compat.h), and the
 * working directory.
 *
 * Working directory: WASI has no inherited one; wasi-libc starts at "/" of the preopened tree, so a
 * relative path like "tests/fixtures/x" would mean "/tests/fixtures/x". cmake/run-wasi.mjs (and
 * tests/wasm/wasi_cli.mjs) pass the host's current directory, as seen inside the preopened tree, in
 * ET_WASI_CWD; the constructor below chdir()s there before main(), so relative paths behave as
 * natively. A source of every WASI executable (CMakeLists.txt): wasm-ld would drop the constructor
 * of an archive member. */
#if defined(__wasi__)
#define _DEFAULT_SOURCE 1 /* getentropy */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wasi_compat.h"

__attribute__((constructor)) static void et_wasi_chdir(void) {
    const char *d = getenv("ET_WASI_CWD");
    if (d && *d) (void)chdir(d);
}

char *mkdtemp(char *tmpl) {
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t n = tmpl ? strlen(tmpl) : 0;
    if (n < 6 || memcmp(tmpl + n - 6, "XXXXXX", 6) != 0) { errno = EINVAL; return NULL; }
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char r[6];
        if (getentropy(r, sizeof r) != 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            unsigned long long x = (unsigned long long)ts.tv_nsec * 2654435761u + (unsigned)attempt;
            for (int i = 0; i < 6; i++) r[i] = (unsigned char)(x >> (i * 8));
        }
        for (int i = 0; i < 6; i++) tmpl[n - 6 + i] = abc[r[i] % (sizeof abc - 1)];
        if (mkdir(tmpl, 0700) == 0) return tmpl;
        if (errno != EEXIST) return NULL;
    }
    errno = EEXIST;
    return NULL;
}
/* No processes in WASI: like POSIX without a shell, system(NULL) is 0 and a command fails (-1).
 * (Tests use system("rm -rf ...") to clean temp folders and only warn when it fails.) */
int system(const char *cmd) {
    if (!cmd) return 0;
    errno = ENOSYS;
    return -1;
}
#endif

/* wasi_compat.h - WASI only: declarations of the few POSIX calls wasi-libc (2022-05) leaves out and
 * wasm/wasi_compat.c provides. Force-included into every WASI compile (CMakeLists.txt, -include), so
 * portable sources need no #ifdefs. Empty on every other target. */
#ifndef ET_WASI_COMPAT_H
#define ET_WASI_COMPAT_H
#if defined(__wasi__)
/* wasi-libc hides mkdtemp ("WASI has no temp directories"); ours creates the directory with a
 * random suffix like POSIX (the host must preopen a directory that contains it, e.g. /tmp). */
char *mkdtemp(char *tmpl);
#endif
#endif

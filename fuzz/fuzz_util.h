/**
 * @file fuzz_util.h
 * @brief Shared pieces of the libFuzzer harnesses (fuzz/README.md): the input
 *        written to a file (the readers take paths), and the oracles every
 *        harness applies beyond "no crash": an error is one non-empty line,
 *        a failed load leaves its output as it was.
 */
#ifndef TS_FUZZ_UTIL_H
#define TS_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"

/* Fail the run (libFuzzer saves the input) with a reason. */
#define FUZZ_CHECK(cond, ...)                                               \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz oracle failed at %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            abort();                                                        \
        }                                                                   \
    } while (0)

static char fuzz_dir_name[128];

static inline void fuzz_dir_remove(void) {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_name);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fuzz_dir_name);
}

/* A folder of this process's own (in /dev/shm when there is one: no disk writes
 * per input), removed when the process exits. */
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_name[0]) {
        struct stat sb;
        const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_name, sizeof fuzz_dir_name, "%s/tinyseek-fuzz-%ld", base, (long)getpid());
        mkdir(fuzz_dir_name, 0700);
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_name;
}

/* Path of @p name in fuzz_dir() (four results stay valid). */
static inline const char *fuzz_path(const char *name) {
    static char buf[4][256];
    static int next;
    char *p = buf[next++ & 3];
    snprintf(p, 256, "%s/%s", fuzz_dir(), name);
    return p;
}

/* Write @p n bytes to @p path (replacing it). */
static inline void fuzz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f, "cannot create %s", path);
    FUZZ_CHECK(n == 0 || fwrite(data, 1, n, f) == n, "cannot write %s", path);
    fclose(f);
}

/* The oracle on every failure: ts_last_error() is one non-empty line, and names @p what. */
static inline void fuzz_check_error(const char *what) {
    const char *e = ts_last_error();
    FUZZ_CHECK(e[0] != '\0', "an error without a message");
    for (const char *c = e; *c; c++)
        FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f, "a control byte 0x%02x in the message: %s", (unsigned char)*c, e);
    FUZZ_CHECK(!what || strstr(e, what), "the message does not name '%s': %s", what, e);
}

/* Every byte of @p p is @p byte. */
static inline int fuzz_all_bytes(const void *p, size_t n, unsigned char byte) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != byte) return 0;
    return 1;
}

#endif

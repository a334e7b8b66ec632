/**
 * @file testutil.h
 * @brief Shared helpers for the cmocka suites: running the CLI, temp folders,
 *        random tensors, and float comparisons.
 */
#ifndef TS_TESTUTIL_H
#define TS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/rng.h"

/** Path of the tinyseek binary under test (scripts/run-tests.sh exports TS_CLI). */
static inline const char *tu_cli(void) {
    const char *p = getenv("TS_CLI");
    return p ? p : "./build/release/tinyseek";
}

/**
 * Run a shell command line; returns the exit status (or -1) and, if
 * @p out is non-NULL, the combined stdout+stderr (up to cap bytes).
 */
static inline int tu_run(char *out, size_t cap, const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = 0;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) {
        size_t l = strlen(buf);
        if (out && n + l < cap) {
            memcpy(out + n, buf, l);
            n += l;
        }
    }
    if (out && cap) out[n < cap ? n : cap - 1] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/** Count the lines of a string (a trailing partial line counts). */
static inline int tu_count_lines(const char *s) {
    int n = 0;
    for (const char *c = s; *c; c++) if (*c == '\n') n++;
    if (*s && s[strlen(s) - 1] != '\n') n++;
    return n;
}

/** Make a fresh temporary folder; writes its path to @p dir (>= 64 bytes). */
static inline void tu_tmpdir(char *dir) {
    strcpy(dir, "/tmp/tinyseek-test-XXXXXX");
    if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
}

/** Remove a temporary folder made by tu_tmpdir(). */
static inline void tu_rmdir(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/** The temporary folder of a test that uses tu_setup_dir/tu_teardown_dir as its fixture. */
static char tu_dir[128];

/** cmocka setup: a fresh temporary folder in tu_dir. */
static inline int tu_setup_dir(void **state) {
    (void)state;
    tu_tmpdir(tu_dir);
    return 0;
}

/** cmocka teardown: remove tu_dir. */
static inline int tu_teardown_dir(void **state) {
    (void)state;
    tu_rmdir(tu_dir);
    return 0;
}

/** Path of @p name inside tu_dir (the last four results stay valid). */
static inline const char *tu_path(const char *name) {
    static char buf[4][256];
    static int next;
    char *p = buf[next++ & 3];
    snprintf(p, 256, "%s/%s", tu_dir, name);
    return p;
}

/** Fill with uniform values in [-scale, scale) from the test stream. */
static inline void tu_fill(float *x, size_t n, float scale, uint64_t seed) {
    ts_rng r;
    ts_rng_seed(&r, seed, TS_STREAM_TEST);
    ts_rng_fill_uniform(&r, x, (long)n, -scale, scale);
}

/** Max |a-b| / max(max|a|, max|b|, tiny): the error relative to the tensor's scale. */
static inline double tu_rel_err(const float *a, const float *b, size_t n) {
    double diff = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > diff) diff = d;
        if (fabs(a[i]) > scale) scale = fabs(a[i]);
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return diff / scale;
}

#endif

/**
 * @file common.c
 * @brief Error messages, checked allocation, threads and the clock.
 */
#include "core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef TS_USE_BLAS
#include <cblas.h>
#endif

static _Thread_local char last_error[512];

ts_status ts_fail(ts_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char msg[sizeof last_error]; /* an argument may be ts_last_error() itself */
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof msg);
    ts_one_line(last_error, sizeof last_error); /* an error is one line, whatever it quotes */
    return status;
}

const char *ts_last_error(void) { return last_error; }

void ts_clear_error(void) { last_error[0] = '\0'; }

void *ts_malloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ts_fail(TS_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *ts_calloc(size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) ts_fail(TS_ERR_NOMEM, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}

int ts_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void ts_thread_share(int n, int *lo, int *hi) {
    int t = 0, nth = 1;
#ifdef _OPENMP
    t = omp_get_thread_num();
    nth = omp_get_num_threads();
#endif
    *lo = (int)((long)n * t / nth);
    *hi = (int)((long)n * (t + 1) / nth);
}

void ts_set_num_threads(int n) {
    if (n <= 0) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
#ifdef TS_USE_BLAS
    openblas_set_num_threads(n);
#endif
}

double ts_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/**
 * @file common.h
 * @brief Status codes, the last-error message, and the shape names used everywhere.
 *
 * Shape names (written in comments as `// inp (B,T,C)`):
 *   - B  batch size (sequences per step)
 *   - T  sequence length (tokens per sequence)
 *   - N  rows = B*T when a function does not care about sequences
 *   - C  hidden size (`hidden_size`)
 *   - H  attention heads, Hkv key/value heads
 *   - D  head dimension
 *   - V  vocabulary size
 *
 * Library functions never exit and never print errors: they return a
 * ::ts_status and leave a one-line explanation in ts_last_error(). Only the
 * command-line front end turns that into a message and exit status 2.
 */
#ifndef TS_COMMON_H
#define TS_COMMON_H

#include <stddef.h>
#include <stdint.h>

/** π, since strict C11 headers do not define M_PI. */
#define TS_PI 3.14159265358979323846

/** Result of a library call that can fail. */
typedef enum {
    TS_OK = 0,          /**< success */
    TS_ERR_IO = 1,      /**< a file could not be opened, read or written */
    TS_ERR_FORMAT = 2,  /**< a file or string is malformed */
    TS_ERR_RANGE = 3,   /**< a value is outside what is allowed */
    TS_ERR_NOMEM = 4,   /**< an allocation failed */
    TS_ERR_ARG = 5      /**< a caller passed an invalid argument */
} ts_status;

/**
 * @brief Record the message of the most recent error (printf-style).
 * @return the status passed in, so callers can write `return ts_fail(TS_ERR_IO, "...")`.
 */
ts_status ts_fail(ts_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** @brief The message recorded by the last ts_fail() on this thread ("" if none). */
const char *ts_last_error(void);

/** @brief Forget the last error message. */
void ts_clear_error(void);

/**
 * @brief Quote untrusted text (a name or value read from a file, a flag's
 * argument) in a message: control bytes become `\n`, `\r`, `\t` or `\xNN`, a
 * backslash becomes `\\`, and text longer than @p cap allows is cut with "...".
 * @return @p buf
 */
const char *ts_escape(char *buf, size_t cap, const char *s);

/**
 * @brief Make @p msg (a NUL-terminated buffer of @p cap bytes) one line, in
 * place: control bytes escaped as ts_escape() does (backslashes kept), cut to fit.
 * ts_fail() and the command line's error printer apply it to every message.
 */
void ts_one_line(char *msg, size_t cap);

/** @brief malloc that records an error message naming @p what on failure. */
void *ts_malloc(size_t bytes, const char *what);

/** @brief calloc that records an error message naming @p what on failure. */
void *ts_calloc(size_t count, size_t size, const char *what);

/** @brief Number of worker threads the library uses (OpenMP and BLAS). */
int ts_num_threads(void);

/**
 * @brief Set the number of threads for OpenMP loops and for OpenBLAS.
 * @param n threads; 0 means "leave the default" (OMP_NUM_THREADS or the core count).
 */
void ts_set_num_threads(int n);

/**
 * @brief This thread's contiguous share [lo, hi) of n items inside a parallel
 * region (thread t of T gets n·t/T .. n·(t+1)/T), or all of [0, n) outside one.
 * Fixed shares: which thread computes what never depends on timing.
 */
void ts_thread_share(int n, int *lo, int *hi);

/** @brief Monotonic wall clock in seconds, for progress displays and benchmarks. */
double ts_now(void);

#endif

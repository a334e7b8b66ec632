/**
 * @file f64.h
 * @brief Force-included (`-include tests/f64/f64.h`) into every file of the
 *        double-precision test build (mk/f64.mk): the library's `float` becomes
 *        `double`.
 *
 * Why: a finite-difference gradient check divides differences of the loss by
 * the step h. In float32 the loss carries rounding noise of ~1e-7 of its value,
 * so a whole model checked at h = 2e-3 cannot be told apart from a wrong one
 * below ~1e-3 relative, and some random draws do not even pass that. The same
 * source compiled with `float` read as `double` has a noise floor nine orders
 * of magnitude lower, so the check can be both strict and seed-independent.
 *
 * How: every system header the library and the tests use is read here first,
 * with `float` still meaning float, so the C library's declarations stay as
 * they are (cmocka's float asserts keep their float parameters too); only then
 * are `float` and the float functions of <math.h> mapped to their double twins.
 * Headers included again later are skipped by their include guards. The
 * library code that depends on the layout of a float32 rather than on its
 * arithmetic (fast_expf's exponent bits) reads `#ifdef TS_F64` and uses the
 * plain function instead; the build has no BLAS (cblas_sgemm is float32), no
 * OpenMP and no checkpoint files (their format is float32).
 * Float literals such as 1e-5f stay float constants: they are still read as
 * the same value on both sides of a gradient check.
 */
#ifndef TS_F64_H
#define TS_F64_H

#define TS_F64 1

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cJSON.h>
#include <cmocka.h>

#define float double

#define sqrtf sqrt
#define expf exp
#define logf log
#define powf pow
#define fabsf fabs
#define fmaxf fmax
#define fminf fmin
#define tanhf tanh
#define sinf sin
#define cosf cos
#define floorf floor
#define ceilf ceil
#define roundf round
#define log1pf log1p
#define expm1f expm1

#endif

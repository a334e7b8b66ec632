/**
 * @file rng.h
 * @brief A small seedable random number generator with named streams.
 *
 * The generator is xoshiro256** seeded through splitmix64. Every consumer of
 * randomness draws from its own *stream*, so that, for example, changing how
 * many numbers weight initialisation uses never changes the data order:
 *
 * | stream            | used for                                         |
 * |-------------------|--------------------------------------------------|
 * | TS_STREAM_INIT    | parameter initialisation                         |
 * | TS_STREAM_DATA    | toy-task generation and batch order              |
 * | TS_STREAM_SAMPLE  | sampling tokens at generation time               |
 * | TS_STREAM_TEST    | tests and gradient checks                        |
 *
 * The state is four 64-bit words; it is saved with training state so a
 * resumed run draws the same numbers as an uninterrupted one.
 */
#ifndef TS_RNG_H
#define TS_RNG_H

#include <stdint.h>

/** Named random streams; see the table in rng.h. */
typedef enum {
    TS_STREAM_INIT = 1,
    TS_STREAM_DATA = 2,
    TS_STREAM_SAMPLE = 3,
    TS_STREAM_TEST = 4
} ts_stream;

/** Generator state (xoshiro256**). */
typedef struct {
    uint64_t s[4]; /**< the four state words; never all zero */
} ts_rng;

/** @brief Seed @p rng from a user seed and a stream number. */
void ts_rng_seed(ts_rng *rng, uint64_t seed, uint64_t stream);
/** @brief Next 64 random bits. */
uint64_t ts_rng_u64(ts_rng *rng);
/** @brief Uniform integer in [0, n) without modulo bias; n must be > 0. */
uint64_t ts_rng_below(ts_rng *rng, uint64_t n);
/** @brief Uniform float in [0, 1) with 24 random bits. */
float ts_rng_uniform(ts_rng *rng);
/** @brief Uniform double in [0, 1) with 53 random bits. */
double ts_rng_uniform_double(ts_rng *rng);
/** @brief Standard normal sample (Box–Muller, one value per call). */
float ts_rng_normal(ts_rng *rng);
/** @brief Fill @p x with normal samples of standard deviation @p std. */
void ts_rng_fill_normal(ts_rng *rng, float *x, long n, float std);
/** @brief Fill @p x with uniform samples in [lo, hi). */
void ts_rng_fill_uniform(ts_rng *rng, float *x, long n, float lo, float hi);

#endif

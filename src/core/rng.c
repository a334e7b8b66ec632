/**
 * @file rng.c
 * @brief xoshiro256** seeded by splitmix64 (public-domain algorithms by
 *        Blackman and Vigna), written out for this project.
 */
#include "core/rng.h"

#include <math.h>

#include "core/common.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ts_rng_seed(ts_rng *rng, uint64_t seed, uint64_t stream) {
    /* Mix the stream into the seed so streams of one seed are unrelated. */
    uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) rng->s[0] = 1;
}

uint64_t ts_rng_u64(ts_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t ts_rng_below(ts_rng *rng, uint64_t n) {
    /* Rejection sampling: discard the top partial block so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = ts_rng_u64(rng); while (r >= limit);
    return r % n;
}

float ts_rng_uniform(ts_rng *rng) { return (float)(ts_rng_u64(rng) >> 40) * 0x1.0p-24f; }

double ts_rng_uniform_double(ts_rng *rng) { return (double)(ts_rng_u64(rng) >> 11) * 0x1.0p-53; }

float ts_rng_normal(ts_rng *rng) {
    double u1 = ts_rng_uniform_double(rng), u2 = ts_rng_uniform_double(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * TS_PI * u2));
}

void ts_rng_fill_normal(ts_rng *rng, float *x, long n, float std) {
    for (long i = 0; i < n; i++) x[i] = std * ts_rng_normal(rng);
}

void ts_rng_fill_uniform(ts_rng *rng, float *x, long n, float lo, float hi) {
    for (long i = 0; i < n; i++) x[i] = lo + (hi - lo) * ts_rng_uniform(rng);
}

/**
 * @file student.c
 * @brief Exercise (chapter 7): write ts_pass_at_k(), the unbiased pass@k
 *        estimator of Chen et al. (2021).
 *
 * n samples were drawn for a problem and c of them are correct. pass@k is the
 * probability that at least one of k samples, drawn without replacement from
 * those n, is correct:
 *
 *     pass@k = 1 − C(n−c, k) / C(n, k)
 *
 * Return NAN when k < 1, k > n, or c is outside 0..n; 1 when n − c < k (every
 * k-subset holds a correct sample). Do not form the binomial coefficients:
 * C(200, 100) is about 9·10^58, and for n in the thousands they overflow a
 * double. Write the ratio as a product of n−(n−c) = c factors instead, each
 * between 0 and 1, and the result is accurate for any n. (Why is
 * 1 − (1 − c/n)^k, the chance with replacement, the wrong estimator?)
 *
 *     make exercise EX=pass_at_k
 * builds the library with this function instead of the one in
 * src/data/answer.c (the evaluation harness calls it for every problem and k)
 * and runs tests/test_ch07_sft.c.
 */
#include <math.h>

#include "data/answer.h"

double ts_pass_at_k(int n, int c, int k) {
    /* TODO: your code here. This placeholder returns the fraction correct,
     * which is right only for k = 1, so the tests fail instead of crashing. */
    if (k < 1 || k > n || c < 0 || c > n) return NAN;
    return (double)c / n;
}

/**
 * @file answer.c
 * @brief Answer parsing, the format checker, pass\@k and majority vote.
 */
#include "data/answer.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

static const char *const format_names[TS_FORMAT_N] = {"ok",      "no_think", "no_answer",   "repeated_tag",
                                                      "order",   "outside",  "empty_answer"};

const char *ts_format_name(ts_format f) { return (unsigned)f < TS_FORMAT_N ? format_names[f] : "?"; }

enum { THINK, THINK_END, ANSWER, ANSWER_END, N_TAGS };
static const char *const tags[N_TAGS] = {"<think>", "</think>", "<answer>", "</answer>"};

static int count_of(const char *s, const char *tag) {
    int n = 0;
    size_t len = strlen(tag);
    for (const char *p = strstr(s, tag); p; p = strstr(p + len, tag)) n++;
    return n;
}

/* Only white space in [a, b)? */
static int blank(const char *a, const char *b) {
    for (; a < b; a++)
        if (!isspace((unsigned char)*a)) return 0;
    return 1;
}

//! [format-check]
ts_format ts_format_check(const char *response) {
    int count[N_TAGS];
    for (int i = 0; i < N_TAGS; i++) count[i] = count_of(response, tags[i]);
    if (count[THINK] == 0 || count[THINK_END] == 0) return TS_FORMAT_NO_THINK;
    if (count[ANSWER] == 0 || count[ANSWER_END] == 0) return TS_FORMAT_NO_ANSWER;
    for (int i = 0; i < N_TAGS; i++)
        if (count[i] > 1) return TS_FORMAT_REPEATED; // one think block, one answer block
    const char *at[N_TAGS];
    for (int i = 0; i < N_TAGS; i++) at[i] = strstr(response, tags[i]);
    for (int i = 1; i < N_TAGS; i++)
        if (at[i] < at[i - 1]) return TS_FORMAT_ORDER; // <think> < </think> < <answer> < </answer>
    const char *end = response + strlen(response);
    if (!blank(response, at[THINK]) || !blank(at[THINK_END] + strlen(tags[THINK_END]), at[ANSWER]) ||
        !blank(at[ANSWER_END] + strlen(tags[ANSWER_END]), end))
        return TS_FORMAT_OUTSIDE; // nothing before, between or after the blocks
    if (blank(at[ANSWER] + strlen(tags[ANSWER]), at[ANSWER_END])) return TS_FORMAT_EMPTY_ANSWER;
    return TS_FORMAT_OK;
}
//! [format-check]

/* [a, b) without white space at either end. */
static void trim(const char **a, const char **b) {
    while (*a < *b && isspace((unsigned char)**a)) (*a)++;
    while (*b > *a && isspace((unsigned char)(*b)[-1])) (*b)--;
}

int ts_answer_extract(const char *response, char *out, size_t cap) {
    if (cap) out[0] = '\0';
    const char *a = strstr(response, tags[ANSWER]);
    if (!a) return 0;
    a += strlen(tags[ANSWER]);
    const char *b = strstr(a, tags[ANSWER_END]);
    if (!b) return 0;
    trim(&a, &b);
    size_t n = (size_t)(b - a);
    if (n == 0 || n + 1 > cap) return 0;
    memcpy(out, a, n);
    out[n] = '\0';
    return 1;
}

int ts_answer_matches(const char *answer, const char *truth) {
    const char *a = answer, *ae = answer + strlen(answer), *t = truth, *te = truth + strlen(truth);
    trim(&a, &ae);
    trim(&t, &te);
    return ae - a == te - t && ae > a && memcmp(a, t, (size_t)(ae - a)) == 0;
}

ts_answer_score ts_answer_score_of(const char *response, const char *truth) {
    ts_answer_score s;
    char answer[256];
    s.has_answer = ts_answer_extract(response, answer, sizeof answer);
    s.correct = s.has_answer && ts_answer_matches(answer, truth);
    s.format = ts_format_check(response);
    return s;
}

double ts_pass_at_k(int n, int c, int k) {
    if (k < 1 || k > n || c < 0 || c > n) return NAN;
    if (n - c < k) return 1.0; // every k-subset holds a correct sample
    double all_wrong = 1.0;    // C(n−c,k)/C(n,k) = Π_{i=n−c+1}^{n} (1 − k/i)
    for (int i = n - c + 1; i <= n; i++) all_wrong *= 1.0 - (double)k / i;
    return 1.0 - all_wrong;
}

int ts_majority_vote(const char *const *answers, int n) {
    int best = -1, best_count = 0;
    for (int i = 0; i < n; i++) {
        if (!answers[i] || !answers[i][0]) continue;
        int first = 1, count = 0;
        for (int j = 0; j < n; j++)
            if (answers[j] && strcmp(answers[j], answers[i]) == 0) {
                if (j < i) first = 0;
                count++;
            }
        if (first && count > best_count) { // first occurrence only: ties keep the earlier answer
            best = i;
            best_count = count;
        }
    }
    return best;
}

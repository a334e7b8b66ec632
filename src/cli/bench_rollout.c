/**
 * @file bench_rollout.c
 * @brief Rollout tokens/s and seconds per GRPO step (see bench_rollout.h).
 */
#include "cli/bench_rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/optim.h"
#include "data/rollout.h"
#include "io/safetensors.h"
#include "model/sampling.h"
#include "train/grpo.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *x, int n, double *scratch) {
    memcpy(scratch, x, (size_t)n * sizeof *x);
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_double);
    return n % 2 ? scratch[n / 2] : 0.5 * (scratch[n / 2 - 1] + scratch[n / 2]);
}

/* CPU time of the whole process (all threads): against the wall clock it
 * shows how much of the machine the run actually had. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double sum(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s;
}

/* The rollout batch as the twin reads it: token ids as F32 (exact below 2^24). */
static ts_status write_rollout(const char *out, const ts_rollout *r, const int *prompt, int P, float beta) {
    int n = r->P * r->G;
    size_t nt = (size_t)n * r->T;
    float *tok = malloc(nt * sizeof(float)), *tgt = malloc(nt * sizeof(float)), *pr = malloc((size_t)P * sizeof(float));
    ts_status st = TS_OK;
    if (!tok || !tgt || !pr) st = ts_fail(TS_ERR_NOMEM, "bench: out of memory writing the rollout");
    if (!st) {
        for (size_t i = 0; i < nt; i++) {
            tok[i] = (float)r->tokens[i];
            tgt[i] = (float)r->targets[i];
        }
        for (int i = 0; i < P; i++) pr[i] = (float)prompt[i];
        int shape[2] = {n, r->T};
        ts_st_entry e[4] = {{"prompt", 1, &P, pr}, {"tokens", 2, shape, tok}, {"targets", 2, shape, tgt},
                            {"rewards", 1, &n, r->rewards}};
        char path[4096], meta[128];
        snprintf(path, sizeof path, "%s/bench_rollout.safetensors", out);
        snprintf(meta, sizeof meta, "{\"group\": \"%d\", \"beta\": \"%.9g\"}", r->G, (double)beta);
        st = ts_safetensors_write(path, e, 4, meta);
    }
    free(tok);
    free(tgt);
    free(pr);
    return st;
}

ts_status bench_rollout(ts_model *m, const int *prompt, const bench_rollout_opts *o, const char *out,
                        bench_rollout_result *res) {
    memset(res, 0, sizeof *res);
    int N = o->n, P = o->prompt, K = o->new_tokens, G = o->group, V = m->cfg.vocab_size, T = P + K;
    if (N < 1 || G < 1 || N % G || P < 1 || K < 1 || o->reps < 1 || o->steps < 1)
        return ts_fail(TS_ERR_ARG, "bench: --rollout %d must be a multiple of --group %d (and prompt, new tokens, "
                                   "repeats and steps >= 1)",
                       N, G);
    if (!m->params.m) return ts_fail(TS_ERR_ARG, "bench: the rollout benchmark needs a model with optimizer state");
    ts_gen_batch g;
    ts_rollout r;
    ts_model ref;
    memset(&g, 0, sizeof g);
    memset(&r, 0, sizeof r);
    memset(&ref, 0, sizeof ref);
    int nt = o->reps > o->steps ? o->reps : o->steps;
    size_t numel = m->params.numel;
    double *wall = malloc((size_t)nt * sizeof(double)), *cpu = malloc((size_t)nt * sizeof(double));
    double *scratch = malloc((size_t)nt * sizeof(double));
    float *w0 = malloc(numel * sizeof(float));
    ts_status st = TS_OK;
    if (!wall || !cpu || !scratch || !w0) st = ts_fail(TS_ERR_NOMEM, "bench: out of memory for the rollout benchmark");
    // T + 1 positions: the cache never fills before the K-th token, so every sequence writes K
    if (!st) st = ts_gen_create(&g, m, N, T + 1, K);

    // Temperature 1, no eos and no stop id: nothing ends a sequence early, so both programs do the same work.
    ts_gen_opts go = {.sampler = {1.0f, 0, 1.0f}, .max_new = K, .eos_id = -1, .keep_eos = 1, .stop_id = -1,
                      .n_valid = V};
    for (int rep = -1; rep < o->reps && !st; rep++) { // rep -1: untimed (first touch of the cache's pages)
        for (int b = 0; b < N; b++) ts_rng_seed(&g.rng[b], o->seed, (uint64_t)b * 8 + TS_STREAM_SAMPLE);
        double t0 = ts_now(), c0 = cpu_now();
        st = ts_gen_run(&g, m, &prompt, &P, 1, N, &go);
        if (rep >= 0) {
            wall[rep] = ts_now() - t0;
            cpu[rep] = cpu_now() - c0;
        }
    }
    if (!st) {
        for (int b = 0; b < N; b++) res->tokens += g.len[b];
        res->tok_s = res->tokens / median(wall, o->reps, scratch);
        res->cpu_util = sum(cpu, o->reps) / sum(wall, o->reps);
        st = ts_rollout_alloc(&r, N / G, G, T, o->beta > 0);
    }
    ts_rng rw;
    ts_rng_seed(&rw, o->seed, TS_STREAM_DATA);
    for (int b = 0; b < N && !st; b++) // rewards in [0,1): no group is zero-variance, every step moves the weights
        st = ts_rollout_set(&r, b, prompt, P, g.gen + (size_t)b * K, g.len[b], (float)ts_rng_uniform(&rw), 0);
    for (size_t i = 0; !st && i < (size_t)N * r.T; i++) res->checksum += (long long)r.tokens[i] * (long long)(i % 1000 + 1);
    if (!st && out) st = write_rollout(out, &r, prompt, P, o->beta);
    if (!st && o->beta > 0 && !(st = ts_model_create(&ref, &m->cfg, TS_MODEL_FROZEN)))
        memcpy(ref.params.data, m->params.data, numel * sizeof(float)); // π_ref: the weights before the steps
    if (!st) memcpy(w0, m->params.data, numel * sizeof(float));

    // One GRPO step as the training loop takes it (grpo_train.c, loop.c), μ = 1: π_old is the policy (ρ ≡ 1).
    ts_grpo_opts gopt = ts_grpo_opts_default();
    gopt.beta = o->beta;
    ts_adamw adamw = ts_adamw_defaults();
    adamw.weight_decay = 0.0f; // tinyseek grpo's default
    for (int s = -1; s < o->steps && !st; s++) { // s -1: untimed, from the saved weights (its norm is reported)
        double t0 = ts_now(), c0 = cpu_now();
        if (r.ref_logp) st = ts_grpo_token_logp(&ref, &r, r.ref_logp);
        float loss = 0;
        ts_grpo_stats gs;
        ts_model_zero_grad(m);
        if (!st) st = ts_grpo_step(m, &r, &gopt, &loss, &gs);
        if (st) break;
        float norm = grad_clip(m->params.grad, numel, 1.0f);
        adamw_step(&m->params, &adamw, 1e-4f, s + 2);
        if (s < 0) res->grad_norm = norm;
        else {
            wall[s] = ts_now() - t0;
            cpu[s] = cpu_now() - c0;
        }
        if (loss != loss) st = ts_fail(TS_ERR_RANGE, "bench: the GRPO loss is not a number");
    }
    if (!st) {
        res->step_s = median(wall, o->steps, scratch);
        res->step_cpu_util = sum(cpu, o->steps) / sum(wall, o->steps);
        for (size_t i = 0; i < numel; i++) {
            double d = (double)m->params.data[i] - w0[i];
            if (d < 0) d = -d;
            if (d > res->max_dw) res->max_dw = d;
        }
        // leave the model as it came: the other measurements start from the saved weights
        memcpy(m->params.data, w0, numel * sizeof(float));
        memset(m->params.m, 0, numel * sizeof(float));
        memset(m->params.v, 0, numel * sizeof(float));
    }
    ts_gen_free(&g);
    ts_rollout_free(&r);
    ts_model_free(&ref);
    free(wall);
    free(cpu);
    free(scratch);
    free(w0);
    return st;
}

/**
 * @file pretrain.c
 * @brief Next-token pretraining on a token stream.
 */
#include "train/pretrain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "io/metrics.h"
#include "io/progress.h"
#include "io/safetensors.h"
#include "io/trainstate.h"
#include "model/checkpoint.h"

ts_train_opts ts_train_opts_default(void) {
    ts_train_opts o;
    memset(&o, 0, sizeof o);
    o.batch_size = 16;
    o.seq_len = 128;
    o.steps = 400;
    o.warmup = 20;
    o.lr = 3e-3f;
    o.min_lr = 3e-4f;
    o.grad_clip = 1.0f;
    o.adamw = ts_adamw_defaults();
    o.eval_every = 50;
    o.eval_batches = 4;
    o.seed = 1;
    return o;
}

/* Fill inputs (B,T) and targets (B,T) from windows of T+1 tokens starting at starts[b]. */
static void make_batch(const ts_token_stream *s, const size_t *starts, int B, int T, int *inputs, int *targets) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            inputs[b * T + t] = s->tokens[starts[b] + t];
            targets[b * T + t] = s->tokens[starts[b] + t + 1];
        }
}

float ts_eval_loss(ts_model *m, const ts_token_stream *eval, int B, int T, int n_batches) {
    if (!eval || eval->n < (size_t)T + 1 || n_batches <= 0) return NAN;
    int *inputs = malloc((size_t)B * T * sizeof(int)), *targets = malloc((size_t)B * T * sizeof(int));
    size_t *starts = malloc((size_t)B * sizeof(size_t));
    if (!inputs || !targets || !starts) {
        free(inputs);
        free(targets);
        free(starts);
        return NAN;
    }
    size_t span = eval->n - (size_t)T - 1, windows = (size_t)B * n_batches;
    double sum = 0;
    for (int i = 0; i < n_batches; i++) {
        for (int b = 0; b < B; b++) starts[b] = span * (size_t)(i * B + b) / windows; // evenly spaced, fixed
        make_batch(eval, starts, B, T, inputs, targets);
        float loss = ts_model_forward(m, inputs, targets, B, T);
        sum += loss == loss ? m->ce_loss : loss; // held out: the cross-entropy alone, without the MoE balance loss
    }
    free(inputs);
    free(targets);
    free(starts);
    return (float)(sum / n_batches);
}

double ts_unigram_entropy(const ts_token_stream *s, int vocab_size) {
    double *count = calloc((size_t)vocab_size, sizeof(double));
    if (!count || s->n == 0) {
        free(count);
        return NAN;
    }
    for (size_t i = 0; i < s->n; i++) count[s->tokens[i]] += 1;
    double h = 0;
    for (int v = 0; v < vocab_size; v++)
        if (count[v] > 0) h -= count[v] / s->n * log(count[v] / s->n);
    free(count);
    return h;
}

/* What must match between a run and its resume. */
static uint64_t run_fingerprint(const ts_model *m, const ts_train_opts *o) {
    uint64_t h = 1469598103934665603ULL;
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ULL)
    MIX(m->params.numel);
    MIX(o->batch_size);
    MIX(o->seq_len);
    MIX(o->steps);
    MIX(o->warmup);
    MIX(o->seed);
    float f[4] = {o->lr, o->min_lr, o->grad_clip, o->adamw.weight_decay};
    uint32_t bits;
    for (int i = 0; i < 4; i++) {
        memcpy(&bits, &f[i], sizeof bits);
        MIX(bits);
    }
    if (o->bias_update_speed != 0.0f) { /* chapter 5; absent from older runs' fingerprints */
        memcpy(&bits, &o->bias_update_speed, sizeof bits);
        MIX(bits);
    }
#undef MIX
    return h;
}

static ts_status save_all(const ts_model *m, const ts_train_opts *o, long step, const ts_rng *data_rng) {
    if (!o->out_dir) return TS_OK;
    ts_status st = ts_checkpoint_save(m, o->out_dir, o->tokenizer_json);
    if (st) return st;
    char path[4096];
    snprintf(path, sizeof path, "%s/training_state.safetensors", o->out_dir);
    ts_trainstate_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.step = step;
    meta.n_rng = 1;
    meta.rng[0] = *data_rng; /* the data order: where the next batch comes from */
    meta.fingerprint = run_fingerprint(m, o);
    return ts_trainstate_save(path, &m->params, &meta);
}

//! [train-step]
/* One optimizer step: forward, backward, clip, AdamW. Returns the loss. */
static float train_step(ts_model *m, const ts_train_opts *o, const int *inputs, const int *targets, long step,
                        float *lr_out, float *norm_out) {
    ts_model_zero_grad(m);
    float loss = ts_model_forward(m, inputs, targets, o->batch_size, o->seq_len);
    ts_model_backward(m);
    float norm = grad_clip(m->params.grad, m->params.numel, o->grad_clip);
    float lr = lr_schedule(step, o->warmup, o->steps, o->lr, o->min_lr);
    adamw_step(&m->params, &o->adamw, lr, step + 1);
    *lr_out = lr;
    *norm_out = norm;
    return loss;
}
//! [train-step]

/* ------------------------------------------------------------------ */
/* Chapter 5: per-step expert load, and the auxiliary-loss-free bias    */
/* ------------------------------------------------------------------ */

/* expert_load.csv: step, max_load, min_load, then l<layer>_e<expert> for every
 * MoE layer and expert. A load is the number of tokens the step's batch sent to
 * the expert divided by the mean over the layer's experts: 1 is balanced, E/K
 * means the layer's tokens all went to the same K experts, 0 a dead expert. */
typedef struct {
    ts_metrics csv;
    int open;    /* the CSV is being written */
    int n_moe;   /* MoE layers */
    int E;       /* routed experts per layer */
    int *counts; /* (n_moe, E) */
    double *row; /* 3 + n_moe·E values */
} expert_log;

static ts_status expert_log_open(expert_log *x, const ts_model *m, const ts_train_opts *o, long start_step) {
    memset(x, 0, sizeof *x);
    x->n_moe = ts_model_moe_layers(m);
    x->E = m->cfg.n_routed_experts;
    if (!o->expert_load_path || x->n_moe == 0) return TS_OK;
    int ncol = 3 + x->n_moe * x->E;
    char *names = malloc((size_t)ncol * 32);
    const char **cols = malloc((size_t)ncol * sizeof *cols);
    x->counts = malloc((size_t)x->n_moe * x->E * sizeof(int));
    x->row = malloc((size_t)ncol * sizeof(double));
    ts_status st = TS_OK;
    if (!names || !cols || !x->counts || !x->row) st = ts_fail(TS_ERR_NOMEM, "pretrain: out of memory for the expert load log");
    for (int i = 0; i < ncol && !st; i++) {
        cols[i] = names + (size_t)i * 32;
        if (i < 3) strcpy(names + (size_t)i * 32, (const char *[]){"step", "max_load", "min_load"}[i]);
    }
    for (int l = 0, j = 3; l < m->cfg.num_hidden_layers && !st; l++)
        for (int e = 0; e < x->E && ts_moe_is_layer(&m->cfg, l); e++) snprintf(names + (size_t)j++ * 32, 32, "l%d_e%d", l, e);
    if (!st && o->resume) st = ts_metrics_truncate_after(o->expert_load_path, start_step);
    if (!st) st = ts_metrics_open(&x->csv, o->expert_load_path, cols, ncol, o->resume);
    x->open = st == TS_OK;
    free(names);
    free(cols);
    return st;
}

//! [moe-after-step]
/* After the optimizer step: log the batch's expert loads, then move the biases (b_i −= γ·sign(load_i − mean)). */
static ts_status expert_log_step(expert_log *x, ts_model *m, const ts_train_opts *o, long step) {
    ts_status st = TS_OK;
    if (x->open) {
        ts_model_expert_load(m, x->counts);
        double total = 0, mx = 0, mn = 1e300;
        for (int e = 0; e < x->E; e++) total += x->counts[e];
        double mean = total / x->E; /* the same in every layer: N·K / E */
        x->row[0] = (double)step;
        for (int i = 0; i < x->n_moe * x->E; i++) {
            double load = mean > 0 ? x->counts[i] / mean : 0;
            x->row[3 + i] = load;
            if (load > mx) mx = load;
            if (load < mn) mn = load;
        }
        x->row[1] = mx;
        x->row[2] = mn;
        st = ts_metrics_row(&x->csv, x->row);
    }
    if (o->bias_update_speed > 0) ts_model_update_router_bias(m, o->bias_update_speed);
    return st;
}
//! [moe-after-step]

static void expert_log_close(expert_log *x) {
    if (x->open) ts_metrics_close(&x->csv);
    free(x->counts);
    free(x->row);
    memset(x, 0, sizeof *x);
}

ts_status ts_pretrain(ts_model *m, const ts_token_stream *train, const ts_token_stream *eval,
                      const ts_train_opts *o, ts_train_result *result) {
    int B = o->batch_size, T = o->seq_len;
    memset(result, 0, sizeof *result);
    if (!m->params.m) return ts_fail(TS_ERR_ARG, "pretrain: the model was created without optimizer state");
    if (train->n < (size_t)T + 2)
        return ts_fail(TS_ERR_RANGE, "pretrain: the training data has %zu tokens, fewer than one window of %d", train->n,
                       T + 1);
    for (size_t i = 0; i < train->n; i++)
        if (train->tokens[i] < 0 || train->tokens[i] >= m->cfg.vocab_size)
            return ts_fail(TS_ERR_RANGE, "pretrain: token %d at position %zu is outside the vocabulary (0..%d)",
                           train->tokens[i], i, m->cfg.vocab_size - 1);
    ts_status st = ts_model_reserve(m, B, T);
    if (st) return st;

    if (o->out_dir && (st = ts_mkdir_p(o->out_dir))) return st;
    ts_rng data_rng;
    ts_rng_seed(&data_rng, o->seed, TS_STREAM_DATA);
    long start_step = 0;
    if (o->resume) {
        if (!o->out_dir) return ts_fail(TS_ERR_ARG, "pretrain: --resume needs the run's output folder");
        char path[4096];
        snprintf(path, sizeof path, "%s/model.safetensors", o->out_dir);
        if ((st = ts_safetensors_load_params(&m->params, path))) return st;
        snprintf(path, sizeof path, "%s/training_state.safetensors", o->out_dir);
        ts_trainstate_meta meta;
        if ((st = ts_trainstate_load(path, &m->params, &meta, run_fingerprint(m, o)))) return st;
        if (meta.n_rng < 1) return ts_fail(TS_ERR_FORMAT, "%s: no data-order RNG state", path);
        start_step = meta.step;
        data_rng = meta.rng[0];
        if (o->metrics_path && (st = ts_metrics_truncate_after(o->metrics_path, start_step))) return st;
    }

    static const char *const columns[] = {"step", "loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"};
    ts_metrics metrics;
    int have_metrics = 0;
    if (o->metrics_path) {
        if ((st = ts_metrics_open(&metrics, o->metrics_path, columns, 7, o->resume))) return st;
        have_metrics = 1;
    }
    expert_log moe_log; /* chapter 5 */
    if ((st = expert_log_open(&moe_log, m, o, start_step))) {
        if (have_metrics) ts_metrics_close(&metrics);
        expert_log_close(&moe_log);
        return st;
    }
    int *inputs = malloc((size_t)B * T * sizeof(int)), *targets = malloc((size_t)B * T * sizeof(int));
    size_t *starts = malloc((size_t)B * sizeof(size_t));
    if (!inputs || !targets || !starts) {
        st = ts_fail(TS_ERR_NOMEM, "pretrain: out of memory for batches");
        goto done;
    }
    long end_step = o->steps;
    if (o->stop_after > 0 && o->stop_after < end_step) end_step = o->stop_after;
    ts_progress progress;
    if (!o->quiet) ts_progress_start(&progress, "pretrain", end_step - start_step);
    double t0 = ts_now(), tokens_done = 0;
    float loss = NAN, val = NAN;
    for (long step = start_step; step < end_step; step++) {
        double ts = ts_now();
        for (int b = 0; b < B; b++) starts[b] = (size_t)ts_rng_below(&data_rng, train->n - (size_t)T - 1);
        make_batch(train, starts, B, T, inputs, targets);
        float lr, norm;
        loss = train_step(m, o, inputs, targets, step, &lr, &norm);
        if ((st = expert_log_step(&moe_log, m, o, step + 1))) goto done; // chapter 5: before an evaluation reroutes
        double step_s = ts_now() - ts;
        tokens_done += (double)B * T;
        val = NAN;
        int last = step + 1 == o->steps;
        if (eval && ((o->eval_every > 0 && (step + 1) % o->eval_every == 0) || last || step == 0))
            val = ts_eval_loss(m, eval, B, T, o->eval_batches);
        if (have_metrics) {
            double row[7] = {(double)(step + 1), loss, val, lr, norm, B * T / step_s, ts_now() - t0};
            if ((st = ts_metrics_row(&metrics, row))) goto done;
        }
        if (!o->quiet) {
            double tps = tokens_done / (ts_now() - t0);
            if (val == val)
                ts_progress_update(&progress, step + 1 - start_step, "loss %.3f  val %.3f  %.1fk tok/s", loss, val,
                                   tps / 1000);
            else
                ts_progress_update(&progress, step + 1 - start_step, "loss %.3f  %.1fk tok/s", loss, tps / 1000);
        }
        if (o->save_every > 0 && (step + 1) % o->save_every == 0 && step + 1 < end_step)
            if ((st = save_all(m, o, step + 1, &data_rng))) goto done;
    }
    result->seconds = ts_now() - t0;
    result->steps_run = end_step - start_step;
    result->tokens_per_s = result->seconds > 0 ? tokens_done / result->seconds : 0;
    result->final_loss = loss;
    result->final_val_loss = val == val ? val : ts_eval_loss(m, eval, B, T, o->eval_batches);
    if (!o->quiet)
        ts_progress_done(&progress, "loss %.3f  val %.3f  %.1fk tok/s", result->final_loss, result->final_val_loss,
                         result->tokens_per_s / 1000);
    st = save_all(m, o, end_step, &data_rng);
done:
    if (have_metrics) ts_metrics_close(&metrics);
    expert_log_close(&moe_log);
    free(inputs);
    free(targets);
    free(starts);
    return st;
}

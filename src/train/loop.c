/**
 * @file loop.c
 * @brief The training loop shared by every trainer.
 */
#include "train/loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "io/metrics.h"
#include "io/progress.h"
#include "io/safetensors.h"
#include "io/savedir.h"
#include "io/trainstate.h"
#include "model/checkpoint.h"
#include "model/health.h"

_Static_assert(TS_BATCH_MAX_RNG == TS_TRAINSTATE_MAX_RNG, "the training state stores every RNG stream of a batch source");

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
    o.mtp_lambda = 0.3f;
    return o;
}

uint64_t ts_train_fingerprint(const ts_model *m, const ts_train_opts *o) {
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
    if (m->cfg.num_nextn_predict_layers > 0) { /* chapter 6: the MTP loss's weight */
        memcpy(&bits, &o->mtp_lambda, sizeof bits);
        MIX(bits);
    }
    if (o->precision.mode != TS_PRECISION_FP32) { /* appendix B; absent from float32 runs' fingerprints */
        const ts_fp8_config *q = &o->precision.fp8;
        MIX(o->precision.mode);
        MIX(q->scaling);
        MIX(q->promote);
        MIX(q->acc_bits);
        MIX(q->pow2_scales);
    }
#undef MIX
    return h;
}

/* ------------------------------------------------------------------ */
/* Checkpoints: the folder is saved as a unit, so a resume never mixes  */
/* one save's weights with another's training state                     */
/* ------------------------------------------------------------------ */

/* Which weights a training state belongs to: recorded at save, checked at resume. */
static uint64_t weights_hash(const ts_params *p) {
    return ts_fingerprint(0, p->data, p->numel * sizeof(float));
}

static ts_status save_all(const ts_model *m, const ts_trainer *t, const ts_train_opts *o, long step) {
    if (!o->out_dir) return TS_OK;
    ts_savedir sd;
    ts_status st = ts_savedir_begin(&sd, o->out_dir, ts_checkpoint_files);
    if (st) return st;
    if (!(st = ts_checkpoint_write(m, sd.tmp, o->tokenizer_json))) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", sd.tmp, TS_TRAINSTATE_FILE);
        ts_trainstate_meta meta;
        memset(&meta, 0, sizeof meta);
        meta.step = step;
        meta.data_pos = t->data->state.pos;
        meta.n_rng = t->data->state.n_rng; /* where the next batch comes from */
        memcpy(meta.rng, t->data->state.rng, sizeof meta.rng);
        meta.fingerprint = t->fingerprint;
        meta.weights_hash = weights_hash(&m->params);
        st = ts_trainstate_save(path, &m->params, &meta);
    }
    if (st) {
        ts_savedir_abort(&sd);
        return st;
    }
    ts_savedir_test_point("state");
    return ts_savedir_commit(&sd);
}

/* Weights, moments, step and the batch source's state from o->out_dir. */
static ts_status load_resume(ts_model *m, const ts_trainer *t, const ts_train_opts *o, long *start_step) {
    if (!o->out_dir) return ts_fail(TS_ERR_ARG, "%s: --resume needs the run's output folder", t->label);
    ts_status st = ts_savedir_clean(o->out_dir, ts_checkpoint_files); /* what killed saves left */
    if (st) return st;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", o->out_dir);
    if ((st = ts_safetensors_load_params(&m->params, path))) return st;
    snprintf(path, sizeof path, "%s/%s", o->out_dir, TS_TRAINSTATE_FILE);
    ts_trainstate_meta meta;
    if ((st = ts_trainstate_load(path, &m->params, &meta, t->fingerprint))) return st;
    if (meta.n_rng != t->data->state.n_rng)
        return ts_fail(TS_ERR_FORMAT, "%s: %d RNG streams, the %s data needs %d (no data-order RNG state?)", path,
                       meta.n_rng, t->label, t->data->state.n_rng);
    uint64_t have = weights_hash(&m->params);
    if (meta.weights_hash && meta.weights_hash != have)
        return ts_fail(TS_ERR_FORMAT,
                       "%s: saved at step %ld with weights %016llx, but %s/model.safetensors holds weights %016llx "
                       "(the two files come from different saves); refusing to resume",
                       path, meta.step, (unsigned long long)meta.weights_hash, o->out_dir, (unsigned long long)have);
    *start_step = meta.step;
    t->data->state.pos = meta.data_pos;
    memcpy(t->data->state.rng, meta.rng, sizeof meta.rng);
    return TS_OK;
}

/* ------------------------------------------------------------------ */
/* One step                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    float loss, lr, norm;
    double *stats; /* the loss's n_stats extra numbers */
    int diverged;  /* the loss or the gradient norm was not finite */
} step_out;

/* The loss or the gradient norm is not finite: say where it started. */
static ts_status diverged(const ts_model *m, const ts_trainer *t, long step, step_out *s) {
    char where[256];
    s->diverged = 1;
    const char *what = "output";
    if (!ts_model_find_nonfinite_output(m, where, sizeof where)) {
        what = "gradient";
        if (!ts_model_find_nonfinite_param(m, m->params.grad, where, sizeof where))
            snprintf(where, sizeof where, "none: every layer output and gradient is finite (the loss itself)");
    }
    char loss[32], norm[32]; /* "nan", not printf's "-nan" */
    snprintf(loss, sizeof loss, "%g", isnan(s->loss) ? NAN : s->loss);
    snprintf(norm, sizeof norm, "%g", isnan(s->norm) ? NAN : s->norm);
    return ts_fail(TS_ERR_RANGE,
                   "%s: step %ld: loss %s, gradient norm %s: training diverged; first non-finite %s: %s "
                   "(stopped before the optimizer step; the last checkpoint is untouched)",
                   t->label, step + 1, loss, norm, what, where);
}

/* After AdamW: an update that overflowed (a huge moment, a learning rate far too large) stops the run here. */
static ts_status weights_finite(const ts_model *m, const ts_trainer *t, long step, step_out *s) {
    char where[256];
    if (!ts_model_find_nonfinite_param(m, m->params.data, where, sizeof where)) return TS_OK;
    s->diverged = 1;
    return ts_fail(TS_ERR_RANGE,
                   "%s: step %ld: weight %s is not finite after the optimizer step: training diverged "
                   "(stopped; the last checkpoint is untouched)",
                   t->label, step + 1, where);
}

//! [train-step]
/* One optimizer step: the loss's forward and backward, clip, AdamW. */
static ts_status train_step(ts_model *m, const ts_trainer *t, const ts_train_opts *o, const ts_batch *b, long step,
                            step_out *s) {
    ts_model_zero_grad(m);
    ts_status st = ts_autocast_begin(&o->precision); // the blocks' linear layers in FP8 or float32 (appendix B)
    if (st) return st;
    st = t->loss.step(t->loss.ctx, m, b, &s->loss, s->stats); // forward, loss, backward: grads += dL/dθ
    ts_status cast = ts_autocast_end();                     // float32 again: evaluation, decoding
    if (!st) st = cast;
    if (!st && t->after_backward) st = t->after_backward(t->after_backward_ctx, m, step);
    if (st) return st;
    s->norm = grad_clip(m->params.grad, m->params.numel, o->grad_clip);
    if (!isfinite(s->loss) || !isfinite(s->norm)) return diverged(m, t, step, s); // before AdamW spreads it
    s->lr = lr_schedule(step, o->warmup, o->steps, o->lr, o->min_lr);
    adamw_step(&m->params, &o->adamw, s->lr, step + 1);
    return weights_finite(m, t, step, s); // no forward, evaluation or save ever sees a weight that overflowed
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

/* ------------------------------------------------------------------ */
/* The loop                                                             */
/* ------------------------------------------------------------------ */

/* metrics.csv: the loop's columns, then the loss's own. */
static ts_status metrics_open(ts_metrics *csv, const ts_trainer *t, const ts_train_opts *o) {
    static const char *const base[] = {"step", "loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"};
    int n = 7 + t->loss.n_stats;
    const char **cols = malloc((size_t)n * sizeof *cols);
    if (!cols) return ts_fail(TS_ERR_NOMEM, "%s: out of memory for the metrics columns", t->label);
    for (int i = 0; i < n; i++) cols[i] = i < 7 ? base[i] : t->loss.stat_names[i - 7];
    ts_status st = ts_metrics_open(csv, o->metrics_path, cols, n, o->resume);
    free(cols);
    return st;
}

ts_status ts_train(ts_model *m, const ts_trainer *t, const ts_train_opts *o, ts_train_result *result) {
    memset(result, 0, sizeof *result);
    if (!m->params.m) return ts_fail(TS_ERR_ARG, "%s: the model was created without optimizer state", t->label);
    ts_batch_source *data = t->data;
    ts_status st = ts_model_reserve(m, data->B, data->T);
    if (st) return st;
    if (o->out_dir && ((st = ts_mkdir_p(o->out_dir)) || (st = ts_savedir_check(o->out_dir)))) return st;
    long start_step = 0;
    if (o->resume) {
        if ((st = load_resume(m, t, o, &start_step))) return st;
        if (o->metrics_path && (st = ts_metrics_truncate_after(o->metrics_path, start_step))) return st;
    }

    ts_metrics metrics;
    int have_metrics = 0, n_cols = 7 + t->loss.n_stats;
    if (o->metrics_path) {
        if ((st = metrics_open(&metrics, t, o))) return st;
        have_metrics = 1;
    }
    expert_log moe_log; /* chapter 5 */
    ts_batch batch;
    memset(&batch, 0, sizeof batch);
    double *row = calloc((size_t)n_cols, sizeof *row);
    if ((st = expert_log_open(&moe_log, m, o, start_step))) goto done;
    if (!row) {
        st = ts_fail(TS_ERR_NOMEM, "%s: out of memory for a metrics row", t->label);
        goto done;
    }
    if ((st = ts_batch_alloc(&batch, data->B, data->T, data->with_weights))) goto done;
    long end_step = o->steps;
    if (o->stop_after > 0 && o->stop_after < end_step) end_step = o->stop_after;
    ts_progress progress;
    if (!o->quiet) ts_progress_start(&progress, t->label, end_step - start_step);
    double t0 = ts_now(), tokens_done = 0;
    float val = NAN;
    step_out s = {NAN, 0, 0, row + 7, 0};
    for (long step = start_step; step < end_step; step++) {
        double ts = ts_now();
        if ((st = data->next(data, &batch))) goto done;
        if ((st = train_step(m, t, o, &batch, step, &s))) {
            if (s.diverged) result->diverged_step = step + 1;
            goto done;
        }
        if ((st = expert_log_step(&moe_log, m, o, step + 1))) goto done; // chapter 5: before an evaluation reroutes
        double step_s = ts_now() - ts, tokens = (double)batch.B * batch.T;
        tokens_done += tokens;
        val = NAN;
        int last = step + 1 == o->steps;
        if (t->eval && ((o->eval_every > 0 && (step + 1) % o->eval_every == 0) || last || step == 0))
            val = t->eval(t->eval_ctx, m);
        if (have_metrics) {
            double head[7] = {(double)(step + 1), s.loss, val, s.lr, s.norm, tokens / step_s, ts_now() - t0};
            memcpy(row, head, sizeof head);
            if ((st = ts_metrics_row(&metrics, row))) goto done;
        }
        if (!o->quiet) {
            double tps = tokens_done / (ts_now() - t0);
            if (val == val)
                ts_progress_update(&progress, step + 1 - start_step, "loss %.3f  val %.3f  %.1fk tok/s", s.loss, val,
                                   tps / 1000);
            else
                ts_progress_update(&progress, step + 1 - start_step, "loss %.3f  %.1fk tok/s", s.loss, tps / 1000);
        }
        if (o->save_every > 0 && (step + 1) % o->save_every == 0 && step + 1 < end_step)
            if ((st = save_all(m, t, o, step + 1))) goto done;
    }
    result->seconds = ts_now() - t0;
    result->steps_run = end_step - start_step;
    result->tokens_per_s = result->seconds > 0 ? tokens_done / result->seconds : 0;
    result->final_loss = s.loss;
    result->final_val_loss = val == val ? val : t->eval ? t->eval(t->eval_ctx, m) : NAN;
    if (!o->quiet)
        ts_progress_done(&progress, "loss %.3f  val %.3f  %.1fk tok/s", result->final_loss, result->final_val_loss,
                         result->tokens_per_s / 1000);
    st = save_all(m, t, o, end_step);
done:
    if (have_metrics) ts_metrics_close(&metrics);
    expert_log_close(&moe_log);
    ts_batch_free(&batch);
    free(row);
    return st;
}

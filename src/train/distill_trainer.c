/**
 * @file distill_trainer.c
 * @brief Distillation run by the shared training loop: SFT's batches
 *        (response-only targets), the loss of ts_distill_step() with a frozen
 *        teacher, SFT's held-out response loss (see distill.h).
 */
#include <math.h>
#include <string.h>

#include "io/trainstate.h"
#include "train/distill.h"
#include "train/sft.h"

const char *const ts_kd_stat_names[TS_KD_N_STATS] = {"ce", "kl", "agree", "response_tokens"};

static ts_status kd_loop_step(void *ctx, ts_model *m, const ts_batch *b, float *loss, double *stats) {
    ts_kd_loss_ctx *c = ctx;
    ts_status st = ts_distill_step(m, c->teacher, b, &c->opts, loss, &c->last);
    stats[0] = c->last.ce;
    stats[1] = c->last.kl;
    stats[2] = c->last.agree;
    stats[3] = c->last.n_counted;
    return st;
}

ts_loss ts_distill_loop_loss(ts_kd_loss_ctx *ctx) {
    memset(&ctx->last, 0, sizeof ctx->last);
    ts_loss l = {.step = kd_loop_step, .ctx = ctx, .n_stats = TS_KD_N_STATS, .stat_names = ts_kd_stat_names};
    return l;
}

typedef struct {
    const ts_sft_data *d;
    int B, max_pairs;
} kd_eval;

/* The student's held-out response cross-entropy: what SFT reports, so a distilled and a fine-tuned student compare. */
static float eval_held_out(void *ctx, ts_model *m) {
    const kd_eval *e = ctx;
    return ts_sft_eval_loss(m, e->d, e->B, e->max_pairs);
}

static uint64_t mix_float(uint64_t h, float x) {
    return ts_fingerprint(h, &x, sizeof x);
}

ts_status ts_distill(ts_model *student, ts_model *teacher, const ts_sft_data *train, const ts_sft_data *eval,
                     int eval_pairs, const ts_kd_opts *kd, const ts_train_opts *opts, ts_train_result *result) {
    memset(result, 0, sizeof *result);
    if (!student->params.m) return ts_fail(TS_ERR_ARG, "distill: the student was created without optimizer state");
    int V = student->cfg.vocab_size;
    if (teacher->cfg.vocab_size != V)
        return ts_fail(TS_ERR_ARG, "distill: the teacher's vocab_size is %d, the student's %d: the soft targets "
                       "must cover the same tokens", teacher->cfg.vocab_size, V);
    ts_kd_result probe;
    ts_status st = ts_kd_loss(&probe, NULL, NULL, NULL, NULL, kd, 0, V); // the settings, before any work
    if (st) return st;
    for (int i = 0; i < train->n; i++)
        for (int t = 0; t < train->seq[i].n; t++)
            if (train->seq[i].ids[t] < 0 || train->seq[i].ids[t] >= V)
                return ts_fail(TS_ERR_RANGE, "distill: pair %d: token %d is outside the models' vocabulary (0..%d)",
                               i + 1, train->seq[i].ids[t], V - 1);
    int ctx_len = student->cfg.max_position_embeddings < teacher->cfg.max_position_embeddings
                      ? student->cfg.max_position_embeddings
                      : teacher->cfg.max_position_embeddings;
    if (train->max_len > ctx_len || (eval && eval->max_len > ctx_len))
        return ts_fail(TS_ERR_RANGE, "distill: a pair is longer than max_position_embeddings %d (the smaller of the "
                       "teacher's and the student's)", ctx_len);
    ts_batch_source pairs;
    if ((st = ts_sft_source(&pairs, train, opts->batch_size, opts->seed))) return st;
    ts_train_opts o = *opts;
    o.seq_len = pairs.T; // the fingerprint records the padded length
    if ((st = ts_model_reserve(teacher, pairs.B, pairs.T))) { // the teacher's activations, once: a forward's worth
        ts_sft_source_free(&pairs);
        return st;
    }
    // a resume must distil from the same teacher with the same settings
    uint64_t fp = ts_train_fingerprint(student, &o);
    fp = mix_float(fp, kd->alpha);
    fp = mix_float(fp, kd->temperature);
    fp = ts_fingerprint(fp, &kd->reverse, sizeof kd->reverse);
    fp = ts_fingerprint(fp, teacher->params.data, teacher->params.numel * sizeof(float));
    ts_kd_loss_ctx ctx = {.opts = *kd, .teacher = teacher};
    kd_eval held_out = {eval, opts->batch_size, eval_pairs};
    ts_trainer t = {
        .label = "distill",
        .data = &pairs,
        .loss = ts_distill_loop_loss(&ctx),
        .eval = eval ? eval_held_out : NULL,
        .eval_ctx = &held_out,
        .fingerprint = fp,
    };
    st = ts_train(student, &t, &o, result);
    ts_sft_source_free(&pairs);
    return st;
}

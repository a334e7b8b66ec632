/**
 * @file distill.c
 * @brief Logit distillation: the teacher's term of one row, the whole loss
 *        over a batch's response tokens, and one gradient step of a student
 *        under a frozen teacher (see distill.h for the equations).
 *
 * Everything here uses the model and the core only (no files, no training
 * loop), so the double-precision test build (mk/f64.mk) can check its
 * gradient through a whole student; the trainer is distill_trainer.c.
 */
#include "train/distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/loss.h"

ts_kd_opts ts_kd_opts_default(void) {
    ts_kd_opts o = {.alpha = 0.5f, .temperature = 2.0f, .reverse = 0};
    return o;
}

double kd_loss_backward(float *d_student, double *log_pt, double *log_ps, const float *student, const float *teacher,
                        int V, double temperature, int reverse, double scale) {
    // log p = z/T − max(z/T) − log Σ_v exp(z_v/T − max(z/T)): the largest exponent is 0, so nothing overflows,
    // and a probability that underflows keeps a finite log (p·log p is then 0, never 0·(−inf))
    const float *z[2] = {teacher, student};
    double *lp[2] = {log_pt, log_ps};
    for (int s = 0; s < 2; s++) {
        double mx = -INFINITY;
        for (int v = 0; v < V; v++) mx = fmax(mx, (double)z[s][v] / temperature);
        double sum = 0;
        for (int v = 0; v < V; v++) {
            lp[s][v] = (double)z[s][v] / temperature - mx;
            sum += exp(lp[s][v]);
        }
        double lse = log(sum);
        for (int v = 0; v < V; v++) lp[s][v] -= lse;
    }
    // forward: KL = Σ p_t (log p_t − log p_s)      reverse: KL = Σ p_s (log p_s − log p_t)
    double kl = 0;
    for (int v = 0; v < V; v++)
        kl += reverse ? exp(log_ps[v]) * (log_ps[v] - log_pt[v]) : exp(log_pt[v]) * (log_pt[v] - log_ps[v]);
    if (d_student) {
        // backward of the KL above through u = student/T (dKL/dstudent = (1/T)·dKL/du):
        //   forward: dKL/du_v = p_s,v − p_t,v       reverse: dKL/du_v = p_s,v·(log p_s,v − log p_t,v − KL)
        double c = scale / temperature;
        for (int v = 0; v < V; v++) {
            double ps = exp(log_ps[v]);
            double g = reverse ? ps * (log_ps[v] - log_pt[v] - kl) : ps - exp(log_pt[v]);
            d_student[v] += (float)(c * g);
        }
    }
    return kl;
}

static int row_argmax(const float *z, int V) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (z[v] > z[best]) best = v;
    return best;
}

static ts_status check_opts(const ts_kd_opts *o) {
    if (!(o->alpha >= 0 && o->alpha <= 1))
        return ts_fail(TS_ERR_ARG, "distill: alpha %g: expected a number in [0, 1] (the weight of the data's "
                       "cross-entropy)", (double)o->alpha);
    if (!(o->temperature > 0 && isfinite(o->temperature)))
        return ts_fail(TS_ERR_ARG, "distill: temperature %g: expected a finite number > 0", (double)o->temperature);
    if (o->reverse != 0 && o->reverse != 1)
        return ts_fail(TS_ERR_ARG, "distill: reverse %d: expected 0 (forward KL) or 1 (reverse KL)", o->reverse);
    return TS_OK;
}

ts_status ts_kd_loss(ts_kd_result *res, float *d_logits, const float *student_logits, const float *teacher_logits,
                     const int *targets, const ts_kd_opts *o, int N, int V) {
    ts_status st = check_opts(o);
    if (st) return st;
    int counted = 0;
    for (int n = 0; n < N; n++) {
        if (targets[n] == TS_IGNORE) continue;
        if (targets[n] < 0 || targets[n] >= V)
            return ts_fail(TS_ERR_RANGE, "distill: target %d at row %d is outside the vocabulary (0..%d) and not "
                           "TS_IGNORE", targets[n], n, V - 1);
        for (int v = 0; v < V; v++)
            if (!isfinite(teacher_logits[(size_t)n * V + v]))
                return ts_fail(TS_ERR_RANGE, "distill: the teacher's logit %d at row %d is %g: expected a finite number",
                               v, n, (double)teacher_logits[(size_t)n * V + v]);
        counted++;
    }
    memset(res, 0, sizeof *res);
    res->n_counted = counted;
    if (counted == 0) return TS_OK; // nothing to learn from: L = 0, no gradient
    float *ce_rows = ts_malloc((size_t)N * sizeof(float), "distillation cross-entropy rows");
    double *log_p = ts_malloc(2 * (size_t)V * sizeof(double), "distillation soft targets");
    if (!ce_rows || !log_p) {
        free(ce_rows);
        free(log_p);
        return TS_ERR_NOMEM;
    }
    //! [kd-loss]
    double alpha = o->alpha, T = o->temperature;
    // hard term α·CE: SFT's masked cross-entropy with Z = N_c/α, so its gradient is (α/N_c)·(p − onehot)
    // (α = 1: Z = N_c, the plain mean, bit for bit); ce_rows[n] = −log softmax(student_n)[y_n], 0 where ignored
    ts_ce_result ce;
    st = ts_loss_crossentropy(&ce, alpha > 0 ? d_logits : NULL, ce_rows, student_logits, targets, NULL,
                              alpha > 0 ? counted / alpha : 0, N, V);
    // soft term (1−α)·T²·KL: each counted row weighs (1−α)·T²/N_c; its gradient is (1−α)·T·(p_s − p_t)/N_c
    // for the forward KL, (1−α)·T·p_s·(a − KL)/N_c for the reverse (distill.h)
    double scale = (1.0 - alpha) * T * T / counted, ce_sum = 0, kl_sum = 0;
    int agree = 0;
    for (int n = 0; !st && n < N; n++) {
        if (targets[n] == TS_IGNORE) continue; // a prompt or padding position: no term, no gradient
        const float *zs = student_logits + (size_t)n * V, *zt = teacher_logits + (size_t)n * V;
        float *d = d_logits && scale > 0 ? d_logits + (size_t)n * V : NULL;
        kl_sum += kd_loss_backward(d, log_p, log_p + V, zs, zt, V, T, o->reverse, scale);
        ce_sum += ce_rows[n];
        agree += row_argmax(zs, V) == row_argmax(zt, V);
    }
    res->ce = ce_sum / counted; // the same sum, in the same order, as ts_loss_crossentropy()'s mean
    res->kl = kl_sum / counted;
    res->loss = alpha * res->ce + (1.0 - alpha) * T * T * res->kl;
    res->agree = (double)agree / counted;
    //! [kd-loss]
    free(ce_rows);
    free(log_p);
    return st;
}

//! [kd-step]
ts_status ts_distill_step(ts_model *student, ts_model *teacher, const ts_batch *b, const ts_kd_opts *o, float *loss,
                          ts_kd_result *res) {
    int N = b->B * b->T, V = student->cfg.vocab_size;
    if (student->mode == TS_MODEL_FROZEN)
        return ts_fail(TS_ERR_ARG, "distill: the student is frozen (no gradients to train)");
    if (teacher->cfg.vocab_size != V)
        return ts_fail(TS_ERR_ARG, "distill: the teacher's vocab_size is %d, the student's %d: the soft targets "
                       "must cover the same tokens", teacher->cfg.vocab_size, V);
    if (b->weights)
        return ts_fail(TS_ERR_ARG, "distill: per-token weights are not supported (an SFT batch has none)");
    // the teacher: a forward only, no gradient; its logits stay in teacher->logits until its next forward
    ts_status st = ts_model_forward_logits(teacher, b->tokens, b->B, b->T);
    if (!st) st = ts_model_forward_logits(student, b->tokens, b->B, b->T);
    if (st) return st;
    memset(student->d_logits, 0, (size_t)N * V * sizeof(float));
    ts_kd_result r;
    st = ts_kd_loss(&r, student->d_logits, student->logits, teacher->logits, b->targets, o, N, V);
    if (st) return st;
    *loss = (float)r.loss + student->aux_loss;
    if (res) *res = r;
    return ts_model_backward_from(student, student->d_logits, NULL, 1.0f);
}
//! [kd-step]

ts_status ts_distill_same_tokenizer(const bpe_tokenizer *a, const char *a_name, const bpe_tokenizer *b,
                                    const char *b_name) {
    if (a->vocab_size != b->vocab_size)
        return ts_fail(TS_ERR_FORMAT, "distill: the teacher and the student must share the tokenizer: %s has %d "
                       "tokens, %s has %d", a_name, a->vocab_size, b_name, b->vocab_size);
    for (int id = 0; id < a->vocab_size; id++) {
        size_t la, lb;
        const unsigned char *ta = bpe_token_bytes(a, id, &la), *tb = bpe_token_bytes(b, id, &lb);
        if (la != lb || memcmp(ta, tb, la) != 0 || a->is_special[id] != b->is_special[id])
            return ts_fail(TS_ERR_FORMAT, "distill: the teacher and the student must share the tokenizer: token %d "
                           "differs between %s and %s", id, a_name, b_name);
    }
    if (a->n_merges != b->n_merges)
        return ts_fail(TS_ERR_FORMAT, "distill: the teacher and the student must share the tokenizer: %s has %d "
                       "merges, %s has %d", a_name, a->n_merges, b_name, b->n_merges);
    for (int i = 0; i < a->n_merges; i++)
        if (a->merges[i].left != b->merges[i].left || a->merges[i].right != b->merges[i].right ||
            a->merges[i].id != b->merges[i].id)
            return ts_fail(TS_ERR_FORMAT, "distill: the teacher and the student must share the tokenizer: merge %d "
                           "differs between %s and %s", i + 1, a_name, b_name);
    return TS_OK;
}

/**
 * @file cmd_dump.c
 * @brief `tinyseek dump-grads`: everything the PyTorch twin (tests/reference/)
 *        needs to check this model, computed on a random checkpoint and batch.
 *
 * Writes into --out:
 *   - config.json, model.safetensors: the random checkpoint (a model folder);
 *   - dump.safetensors, all F32:
 *       tokens, targets (B,T)          the batch (ids stored as floats, exact below 2^24)
 *       logits (B*T,V), loss (1)       the forward
 *       grad.NAME for every param NAME the backward (before clipping)
 *       hidden (B*T,C)                 the last hidden state (before the final norm)
 *       open.weights (B*T), open.hidden_coef (B*T,C), open.loss (1), open.grad.NAME
 *                                      the open path (src/train/loss.h,
 *                                      ts_model_backward_from()): gradients of
 *                                      Σ w·ce / counted + Σ hidden_coef ⊙ hidden + aux/2
 *       decode.logits (T-P+1, V)       sequence 0: prefill of its first P = T/2 tokens,
 *                                      then T-P teacher-forced KV-cache decode steps
 *       decode_naive.logits            the same with MLA's naive (per-head) cache; the
 *                                      default cache is the absorbed (latent) one
 *       adamw.loss, adamw.grad_norm (S)  S optimizer steps on the same batch
 *                                      (forward, backward, clip, AdamW; loss before each step)
 *       mtp.lambda (1), mtp.logits.K (B*(T-K), V) for K = 1..D, mtp.depth_loss (D),
 *       mtp.loss (1), mtp.grad.NAME    a model with MTP modules (num_nextn_predict_layers = D
 *                                      > 0, chapter 6): each depth's logits and the gradients
 *                                      of L_main + (λ/D)·Σ_k L_k + the balance losses
 *                                      (src/train/mtp_loss.c); the sections above are the
 *                                      main model's alone (the modules' gradients are 0 there)
 *       adamw.final_loss (1)           the loss after the S steps
 *       final.NAME                     the weights after the S steps
 *       grpo.*                         chapter 8's GRPO loss on given rollouts (dump_grpo(), at the end
 *                                      of this file): the rollouts, π_old's and π_ref's log-probs, and
 *                                      for three settings the loss, statistics and every gradient
 *       kd.*                           chapter 9's distillation loss on given teacher logits (dump_kd(),
 *                                      at the end of this file): the teacher's logits on the batch, and
 *                                      for three settings the loss, its parts and every gradient
 *     and the optimizer settings as string metadata.
 *
 * The AdamW steps use ε = 1e-3 by default, not the training default 1e-8.
 * Adam's step m̂/(√v̂+ε) divides by the gradient's own size, so an element
 * whose gradient is near 0 moves by up to lr·δg/ε for a rounding difference δg
 * of its gradient: with ε = 1e-8 and δg ~ 1e-7 (float32 against the twin's
 * float64) that is a visible fraction of lr, with ε = 1e-3 it is ~1e-6 of it.
 * The step still divides by √v̂ for every gradient much larger than ε.
 *
 * TS_CROSSCHECK_PERTURB=<param name> adds 1% of that gradient's largest
 * magnitude to its first element after every backward: a deliberately broken
 * gradient, which `make crosscheck-selftest` expects the twin to catch.
 * TS_CROSSCHECK_GRPO_BUG=noclip|nokl|noclip_higher plants a bug in the GRPO
 * section alone: its gradients are those of the loss with the clip never
 * applied, without the KL term, or with ε_high = ε_low, while the settings
 * written are the true ones; the selftest expects the twin to catch each.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/optim.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "train/distill.h"
#include "train/grpo.h"
#include "train/loss.h"
#include "train/mtp_loss.h"

/* A growing list of tensors to write; names and data are owned copies. */
typedef struct {
    ts_st_entry *e;
    int n, cap;
    int failed;
} dump_list;

static void dump_add(dump_list *d, const char *name, int ndim, const int *shape, const float *data) {
    if (d->failed || ndim < 0 || ndim > TS_ST_MAX_DIMS) {
        d->failed = 1;
        return;
    }
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 64;
        ts_st_entry *e = realloc(d->e, (size_t)cap * sizeof *e);
        if (!e) {
            d->failed = 1;
            return;
        }
        d->e = e;
        d->cap = cap;
    }
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    char *nm = malloc(strlen(name) + 1);
    int *sh = malloc(TS_ST_MAX_DIMS * sizeof(int));
    float *x = malloc((numel ? numel : 1) * sizeof(float));
    if (!nm || !sh || !x) {
        free(nm);
        free(sh);
        free(x);
        d->failed = 1;
        return;
    }
    strcpy(nm, name);
    memcpy(sh, shape, (size_t)ndim * sizeof(int));
    memcpy(x, data, numel * sizeof(float));
    d->e[d->n++] = (ts_st_entry){nm, ndim, sh, x};
}

static void dump_free(dump_list *d) {
    for (int i = 0; i < d->n; i++) {
        free((void *)d->e[i].name);
        free((void *)d->e[i].shape);
        free((void *)d->e[i].data);
    }
    free(d->e);
}

/* Each registered tensor under prefix + its name, from base (data or grad). */
static void dump_params(dump_list *d, const ts_params *p, const float *base, const char *prefix) {
    char name[TS_NAME_MAX + 16];
    for (int i = 0; i < p->count; i++) {
        const ts_param *t = &p->params[i];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        dump_add(d, name, t->ndim, t->shape, base + t->offset);
    }
}

/* The deliberate bug of TS_CROSSCHECK_PERTURB (see the file comment). */
static void perturb(ts_params *p, int idx) {
    if (idx < 0) return;
    const ts_param *t = &p->params[idx];
    float *g = p->grad + t->offset, big = 0.0f;
    for (size_t i = 0; i < t->numel; i++) big = fabsf(g[i]) > big ? fabsf(g[i]) : big;
    g[0] += 0.01f * (big > 0.0f ? big : 1.0f);
}

/* The open path: per-token weighted cross-entropy (weights in [0.5, 1.5)) plus a
 * loss on the hidden state, L_h = Σ r ⊙ hidden (r ~ 0.05·N(0,1)), plus half the MoE
 * balance loss, through ts_model_forward_logits(), ts_loss_crossentropy() and
 * ts_model_backward_from(m, d_logits, r, 0.5). Returns the CLI status. */
static int dump_open(dump_list *d, ts_model *m, const int *tokens, const int *targets, int B, int T, ts_rng *rng,
                     int pidx) {
    int N = B * T, C = m->cfg.hidden_size, V = m->cfg.vocab_size, rc = 0;
    float *w = malloc((size_t)N * sizeof(float)), *r = malloc((size_t)N * C * sizeof(float));
    float *d_logits = calloc((size_t)N * V, sizeof(float));
    if (!w || !r || !d_logits) {
        rc = cli_error("dump-grads: out of memory");
        goto done;
    }
    for (int i = 0; i < N; i++) w[i] = 0.5f + ts_rng_uniform(rng);
    for (int i = 0; i < N * C; i++) r[i] = 0.05f * ts_rng_normal(rng);
    ts_model_zero_grad(m);
    ts_ce_result ce;
    if (ts_model_forward_logits(m, tokens, B, T) ||
        ts_loss_crossentropy(&ce, d_logits, NULL, m->logits, targets, w, 0, N, V) ||
        ts_model_backward_from(m, d_logits, r, 0.5f)) {
        rc = cli_lib_error();
        goto done;
    }
    perturb(&m->params, pidx);
    double on_hidden = 0;
    for (int i = 0; i < N * C; i++) on_hidden += (double)r[i] * m->hidden[i];
    float loss = (float)(ce.loss + on_hidden + 0.5 * m->aux_loss);
    int shape_nc[2] = {N, C}, one = 1;
    dump_add(d, "hidden", 2, shape_nc, m->hidden);
    dump_add(d, "open.weights", 1, &N, w);
    dump_add(d, "open.hidden_coef", 2, shape_nc, r);
    dump_add(d, "open.loss", 1, &one, &loss);
    dump_params(d, &m->params, m->params.grad, "open.grad.");
done:
    free(w);
    free(r);
    free(d_logits);
    return rc;
}

/* Chapter 6: the MTP objective through ts_mtp_loss_step(): every depth's logits and every gradient. */
static int dump_mtp(dump_list *d, ts_model *m, const int *tokens, const int *targets, int B, int T, float lambda,
                    int pidx) {
    int D = m->cfg.num_nextn_predict_layers, V = m->cfg.vocab_size;
    ts_model_zero_grad(m);
    ts_mtp_loss_result r;
    if (ts_mtp_loss_step(m, tokens, targets, NULL, B, T, lambda, 1.0f, &r)) return cli_lib_error();
    perturb(&m->params, pidx);
    char name[32];
    float depth_loss[8];
    int one = 1, nd = D < 8 ? D : 8;
    for (int k = 1; k <= D; k++) {
        int shape[2] = {B * ts_mtp_len(T, k), V};
        snprintf(name, sizeof name, "mtp.logits.%d", k);
        dump_add(d, name, 2, shape, m->mtp_acts[k - 1].logits);
        if (k <= 8) depth_loss[k - 1] = r.mtp_loss[k - 1];
    }
    dump_add(d, "mtp.lambda", 1, &one, &lambda);
    dump_add(d, "mtp.depth_loss", 1, &nd, depth_loss);
    dump_add(d, "mtp.loss", 1, &one, &r.loss);
    dump_params(d, &m->params, m->params.grad, "mtp.grad.");
    return 0;
}

static int dump_grpo(dump_list *d, ts_model *m, int T, uint64_t seed, int pidx);
static int dump_kd(dump_list *d, ts_model *m, int *tokens, int *targets, int B, int T, uint64_t seed, int pidx);

int cmd_dump(int argc, char **argv) {
    const char *config = NULL, *out = NULL;
    int B = 3, T = 16, threads = 0, steps = 10;
    uint64_t seed = 1;
    float lr = 1e-2f, clip = 1.0f, norm_noise = 0.2f, ignore_frac = 0.1f, mtp_lambda = 0.3f;
    ts_adamw adamw = ts_adamw_defaults();
    adamw.eps = 1e-3f;
    cli_opt opts[] = {
        {"config", OPT_STR, &config, "model config.json", 1, 0},
        {"out", OPT_STR, &out, "folder to write config.json, model.safetensors and dump.safetensors into", 1, 0},
        {"batch", OPT_INT, &B, "sequences (B)", 1, 4096},
        {"seq", OPT_INT, &T, "tokens per sequence (T)", 2, 1 << 20},
        {"seed", OPT_U64, &seed, "seed of the weights and the batch", 1, 0},
        {"steps", OPT_INT, &steps, "AdamW steps on the batch", 0, 100000},
        {"lr", OPT_FLOAT, &lr, "constant learning rate of the AdamW steps", 0, 10},
        {"clip", OPT_FLOAT, &clip, "global gradient-norm clip (0 = off)", 0, 1e9},
        {"wd", OPT_FLOAT, &adamw.weight_decay, "AdamW weight decay", 0, 10},
        {"eps", OPT_FLOAT, &adamw.eps, "AdamW epsilon (see the file comment)", 0, 1},
        {"norm-noise", OPT_FLOAT, &norm_noise, "norm weights are 1 + this * N(0,1) (0: all ones)", 0, 10},
        {"ignore", OPT_FLOAT, &ignore_frac, "fraction of targets set to -1 (ignored)", 0, 1},
        {"threads", OPT_INT, &threads, "threads (0 = default)", 0, 1024},
        {"mtp-lambda", OPT_FLOAT, &mtp_lambda, "weight of the MTP modules' loss (models with num_nextn_predict_layers > 0)", 0, 100},
    };
    int rc = cli_parse("dump-grads", "--config F --out DIR [flags]", argc, argv, opts,
                       (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    ts_set_num_threads(threads);
    if (!config) return cli_error("dump-grads: --config is required");
    if (!out) return cli_error("dump-grads: --out is required");

    ts_config cfg;
    if (ts_config_load(&cfg, config)) return cli_lib_error();
    if (T > cfg.max_position_embeddings)
        return cli_error("dump-grads: --seq %d exceeds max_position_embeddings %d in %s", T,
                         cfg.max_position_embeddings, config);
    ts_model m;
    if (ts_model_create(&m, &cfg, 1)) return cli_lib_error();
    ts_model_init_weights(&m, seed);
    ts_rng rng;
    ts_rng_seed(&rng, seed, TS_STREAM_TEST);
    for (int i = 0; i < m.params.count; i++) { /* norms away from 1, so their gradients matter */
        const ts_param *t = &m.params.params[i];
        if (t->ndim != 1) continue;
        float *w = m.params.data + t->offset;
        for (size_t j = 0; j < t->numel; j++) w[j] = 1.0f + norm_noise * ts_rng_normal(&rng);
    }
    const char *pname = getenv("TS_CROSSCHECK_PERTURB");
    int pidx = -1;
    if (pname && *pname && (pidx = ts_params_find(&m.params, pname)) < 0) {
        ts_model_free(&m);
        return cli_error("dump-grads: TS_CROSSCHECK_PERTURB names '%s', which is not a parameter of %s", pname, config);
    }
    if (ts_checkpoint_save(&m, out, NULL)) {
        ts_model_free(&m);
        return cli_lib_error();
    }

    int N = B * T, V = cfg.vocab_size;
    int *tokens = malloc((size_t)N * sizeof(int)), *targets = malloc((size_t)N * sizeof(int));
    float *ftok = malloc((size_t)N * sizeof(float)), *ftgt = malloc((size_t)N * sizeof(float));
    float *losses = calloc((size_t)steps + 1, sizeof(float)), *norms = calloc((size_t)steps + 1, sizeof(float));
    int P = T / 2, n_dec = T - P + 1;
    float *dec = malloc((size_t)n_dec * V * sizeof(float));
    dump_list d = {0};
    ts_kvcache kv;
    memset(&kv, 0, sizeof kv);
    if (!tokens || !targets || !ftok || !ftgt || !losses || !norms || !dec) {
        rc = cli_error("dump-grads: out of memory");
        goto done;
    }
    for (int i = 0; i < N; i++) {
        tokens[i] = (int)ts_rng_below(&rng, (uint64_t)V);
        targets[i] = ts_rng_uniform(&rng) < ignore_frac ? TS_IGNORE : (int)ts_rng_below(&rng, (uint64_t)V);
        ftok[i] = (float)tokens[i];
        ftgt[i] = (float)targets[i];
    }
    int shape_bt[2] = {B, T}, shape_nv[2] = {N, V}, one = 1;
    dump_add(&d, "tokens", 2, shape_bt, ftok);
    dump_add(&d, "targets", 2, shape_bt, ftgt);

    /* forward + backward */
    ts_model_zero_grad(&m);
    float loss = ts_model_forward(&m, tokens, targets, B, T);
    if (loss != loss) {
        rc = cli_lib_error();
        goto done;
    }
    ts_model_backward(&m);
    perturb(&m.params, pidx);
    dump_add(&d, "logits", 2, shape_nv, m.logits);
    dump_add(&d, "loss", 1, &one, &loss);
    dump_params(&d, &m.params, m.params.grad, "grad.");
    if ((rc = dump_open(&d, &m, tokens, targets, B, T, &rng, pidx))) goto done;
    if (cfg.num_nextn_predict_layers > 0 && (rc = dump_mtp(&d, &m, tokens, targets, B, T, mtp_lambda, pidx))) goto done;
    if ((rc = dump_grpo(&d, &m, T, seed, pidx))) goto done;
    if ((rc = dump_kd(&d, &m, tokens, targets, B, T, seed, pidx))) goto done;

    /* KV-cache decode of sequence 0, teacher-forced; MLA also with the naive (per-head) cache */
    int n_modes = m.attn == TS_ATTN_MLA ? 2 : 1;
    for (int mode = 0; mode < n_modes; mode++) {
        ts_kvcache_free(&kv);
        if (ts_kvcache_create_for(&kv, &m.cfg, 1, T, mode ? TS_KV_NAIVE : TS_KV_ABSORBED) ||
            ts_model_prefill(&m, &kv, 0, tokens, P, dec)) {
            rc = cli_lib_error();
            goto done;
        }
        for (int t = P; t < T; t++)
            if (ts_model_decode(&m, &kv, &tokens[t], NULL, dec + (size_t)(t - P + 1) * V)) {
                rc = cli_lib_error();
                goto done;
            }
        int shape_dec[2] = {n_dec, V};
        dump_add(&d, mode ? "decode_naive.logits" : "decode.logits", 2, shape_dec, dec);
    }

    /* AdamW steps on the same batch */
    for (int s = 0; s < steps; s++) {
        ts_model_zero_grad(&m);
        losses[s] = ts_model_forward(&m, tokens, targets, B, T);
        ts_model_backward(&m);
        perturb(&m.params, pidx);
        norms[s] = grad_clip(m.params.grad, m.params.numel, clip);
        adamw_step(&m.params, &adamw, lr, s + 1);
    }
    float final_loss = ts_model_forward(&m, tokens, targets, B, T);
    if (steps > 0) {
        dump_add(&d, "adamw.loss", 1, &steps, losses);
        dump_add(&d, "adamw.grad_norm", 1, &steps, norms);
    }
    dump_add(&d, "adamw.final_loss", 1, &one, &final_loss);
    dump_params(&d, &m.params, m.params.data, "final.");
    if (d.failed) {
        rc = cli_error("dump-grads: out of memory");
        goto done;
    }
    char meta[512], path[4096];
    snprintf(meta, sizeof meta,
             "{\"producer\": \"tinyseek dump-grads\", \"steps\": \"%d\", \"lr\": \"%.9g\", \"beta1\": \"%.9g\", "
             "\"beta2\": \"%.9g\", \"eps\": \"%.9g\", \"weight_decay\": \"%.9g\", \"clip\": \"%.9g\", "
             "\"prefill\": \"%d\", \"threads\": \"%d\", \"perturbed\": \"%s\"}",
             steps, lr, adamw.beta1, adamw.beta2, adamw.eps, adamw.weight_decay, clip, P, ts_num_threads(),
             pidx >= 0 ? pname : "");
    snprintf(path, sizeof path, "%s/dump.safetensors", out);
    if (ts_safetensors_write(path, d.e, d.n, meta)) {
        rc = cli_lib_error();
        goto done;
    }
    printf("dump-grads: %s, batch %dx%d, loss %.6f, %d AdamW steps -> %.6f, %d tensors -> %s%s%s\n", config, B, T,
           loss, steps, final_loss, d.n, path, pidx >= 0 ? ", perturbed gradient of " : "", pidx >= 0 ? pname : "");
done:
    ts_kvcache_free(&kv);
    dump_free(&d);
    free(tokens);
    free(targets);
    free(ftok);
    free(ftgt);
    free(losses);
    free(norms);
    free(dec);
    ts_model_free(&m);
    return rc;
}

/* ---- chapter 8: GRPO on given rollouts ----------------------------------- */

/* A frozen copy of @p m whose weights moved by sigma·N(0,1): π_old after some
 * updates, or a reference the policy has drifted from. */
static ts_status grpo_perturbed_copy(ts_model *dst, const ts_model *m, float sigma, ts_rng *rng) {
    ts_status st = ts_model_create(dst, &m->cfg, TS_MODEL_FROZEN);
    if (st) return st;
    for (size_t i = 0; i < m->params.numel; i++) dst->params.data[i] = m->params.data[i] + sigma * ts_rng_normal(rng);
    return TS_OK;
}

/* GRPO (src/train/grpo.h) on P = 3 groups of G = 4 random rollouts of T
 * positions (prompts of 2..5 tokens, then a completion; group 2's rewards all
 * equal), with π_old and π_ref frozen copies of the model whose weights moved
 * by 0.15·initializer_range·N(0,1), so ρ ≠ 1 and the clip fires on some
 * tokens. The first completion token of every sequence with A > 0 then gets
 * ρ = 1.24 (its π_old log-prob moved to the policy's own minus log 1.24): in
 * clip-higher's window (1 + 0.2, 1 + 0.28], clipped at ε_high 0.2 and not at
 * 0.28, so the (tok) setting's gradient differs from what ε_high = ε_low
 * gives. Their log-probs are rounded to float32, the form the dump stores,
 * before the loss reads them, so the twin computes from the same numbers.
 * Three settings, one gradient each: (seq) DeepSeekMath's per-completion mean,
 * ε 0.2/0.2, β 0.1; (tok) DAPO's token-level mean with clip-higher (ε_high
 * 0.28), zero-variance groups dropped, β 0.1; (const) Dr. GRPO (no std
 * division, constant L_max = T), β 0. Writes grpo.tokens, grpo.targets (n,T),
 * grpo.rewards (n), grpo.old_logp, grpo.ref_logp (n,T), and per setting S:
 * grpo.S.settings [P, G, eps_low, eps_high, beta, adv_eps, scale_by_std, norm,
 * max_len, drop_zero_var], grpo.S.loss, grpo.S.stats [clip_frac, kl,
 * zero_var_frac, entropy], grpo.S.grad.NAME. Returns the CLI status. */
static int dump_grpo(dump_list *d, ts_model *m, int T, uint64_t seed, int pidx) {
    enum { P = 3, G = 4 };
    int n = P * G, rc = 0;
    size_t nt = (size_t)n * T;
    ts_rollout r;
    ts_model old, ref;
    memset(&old, 0, sizeof old);
    memset(&ref, 0, sizeof ref);
    float *buf = malloc(nt * sizeof(float));
    int *seq = malloc((size_t)T * sizeof(int));
    ts_rng rng;
    ts_rng_seed(&rng, seed ^ 0x6772706fULL, TS_STREAM_TEST); /* its own draws: the other dumps keep theirs */
    if (!buf || !seq || ts_rollout_alloc(&r, P, G, T, 1)) {
        free(buf);
        free(seq);
        return cli_error("dump-grads: out of memory");
    }
    int V = m->cfg.vocab_size;
    for (int i = 0; i < n; i++) {
        int p = 2 + (int)ts_rng_below(&rng, 4);
        if (p > T - 1) p = T - 1;
        int c = 1 + (int)ts_rng_below(&rng, (uint64_t)(T - p));
        for (int k = 0; k < p + c; k++) seq[k] = (int)ts_rng_below(&rng, (uint64_t)V);
        float reward = i / G == P - 1 ? 1.0f : (float)ts_rng_below(&rng, 3) / 2; /* 0, 1/2 or 1; the last group equal */
        if (i % G == 0 && i / G < P - 1) reward = 1.0f; /* ...and never all equal in the others */
        if (i % G == 1 && i / G < P - 1) reward = 0.0f;
        if (ts_rollout_set(&r, i, seq, p, seq + p, c, reward, 0)) {
            rc = cli_lib_error();
            goto done;
        }
    }
    float sigma = 0.15f * m->cfg.initializer_range;
    if (grpo_perturbed_copy(&old, m, sigma, &rng) || grpo_perturbed_copy(&ref, m, sigma, &rng) ||
        ts_grpo_token_logp(&old, &r, r.old_logp) || ts_grpo_token_logp(&ref, &r, r.ref_logp)) {
        rc = cli_lib_error();
        goto done;
    }
    r.has_old = 1;
    {
        double *own = malloc(nt * sizeof(double)), adv[P * G];
        if (!own || ts_grpo_token_logp(m, &r, own)) {
            free(own);
            rc = own ? cli_lib_error() : cli_error("dump-grads: out of memory");
            goto done;
        }
        ts_grpo_advantages(adv, NULL, r.rewards, P, G, 1, 1e-4);
        for (int i = 0; i < n; i++) {
            if (!(adv[i] > 0)) continue;
            for (int t = 0; t < T; t++) {
                size_t k = (size_t)i * T + t;
                if (r.targets[k] == TS_IGNORE) continue;
                r.old_logp[k] = own[k] - log(1.24); // ρ = 1.24: in clip-higher's window
                break;
            }
        }
        free(own);
    }
    for (size_t k = 0; k < nt; k++) {
        r.old_logp[k] = (float)r.old_logp[k];
        r.ref_logp[k] = (float)r.ref_logp[k];
    }
    int shape_nt[2] = {n, T}, one = 1, n_set = 10, n_stats = 4;
    for (size_t k = 0; k < nt; k++) buf[k] = (float)r.tokens[k];
    dump_add(d, "grpo.tokens", 2, shape_nt, buf);
    for (size_t k = 0; k < nt; k++) buf[k] = (float)r.targets[k];
    dump_add(d, "grpo.targets", 2, shape_nt, buf);
    dump_add(d, "grpo.rewards", 1, &n, r.rewards);
    for (size_t k = 0; k < nt; k++) buf[k] = (float)r.old_logp[k];
    dump_add(d, "grpo.old_logp", 2, shape_nt, buf);
    for (size_t k = 0; k < nt; k++) buf[k] = (float)r.ref_logp[k];
    dump_add(d, "grpo.ref_logp", 2, shape_nt, buf);

    const char *bug = getenv("TS_CROSSCHECK_GRPO_BUG");
    if (bug && *bug && strcmp(bug, "noclip") && strcmp(bug, "nokl") && strcmp(bug, "noclip_higher")) {
        rc = cli_error("dump-grads: TS_CROSSCHECK_GRPO_BUG is '%s': expected noclip, nokl or noclip_higher", bug);
        goto done;
    }
    const char *names[3] = {"seq", "tok", "const"};
    for (int s = 0; s < 3; s++) {
        ts_grpo_opts o = ts_grpo_opts_default();
        o.beta = 0.1f;
        if (s == 1) {
            o.norm = TS_GRPO_NORM_TOKEN;
            o.eps_high = 0.28f;
            o.drop_zero_var = 1;
        } else if (s == 2) {
            o.norm = TS_GRPO_NORM_CONSTANT;
            o.scale_by_std = 0;
            o.max_len = T;
            o.beta = 0.0f;
        }
        ts_grpo_opts run = o; // the planted bug, if any: the gradient of another loss than the settings say
        if (bug && !strcmp(bug, "noclip")) run.eps_low = 0.999f, run.eps_high = 1e9f;
        if (bug && !strcmp(bug, "nokl")) run.beta = 0.0f;
        if (bug && !strcmp(bug, "noclip_higher")) run.eps_high = run.eps_low;
        ts_grpo_stats st;
        float loss;
        ts_model_zero_grad(m);
        if (ts_grpo_step(m, &r, &run, &loss, &st)) {
            rc = cli_lib_error();
            goto done;
        }
        perturb(&m->params, pidx);
        char name[64];
        float settings[10] = {P, G, o.eps_low, o.eps_high, o.beta, o.adv_eps, (float)o.scale_by_std, (float)o.norm,
                              (float)o.max_len, (float)o.drop_zero_var};
        float stats[4] = {(float)st.clip_frac, (float)(o.beta > 0 ? st.kl : 0.0), (float)st.zero_var_frac,
                          (float)st.entropy};
        snprintf(name, sizeof name, "grpo.%s.settings", names[s]);
        dump_add(d, name, 1, &n_set, settings);
        snprintf(name, sizeof name, "grpo.%s.loss", names[s]);
        dump_add(d, name, 1, &one, &loss);
        snprintf(name, sizeof name, "grpo.%s.stats", names[s]);
        dump_add(d, name, 1, &n_stats, stats);
        snprintf(name, sizeof name, "grpo.%s.grad.", names[s]);
        dump_params(d, &m->params, m->params.grad, name);
        printf("dump-grads: grpo %-5s loss %+.6f, clip fraction %.3f, rho in [%.3f, %.3f], KL %.4f\n", names[s], loss,
               st.clip_frac, st.ratio_min, st.ratio_max, st.kl);
    }
done:
    ts_model_free(&old);
    ts_model_free(&ref);
    ts_rollout_free(&r);
    free(buf);
    free(seq);
    return rc;
}

/* ---- chapter 9: logit distillation on given teacher logits ----------------- */

/* The distillation loss (src/train/distill.h) of the model as the student on
 * the dump's batch (its ignored targets are the masked positions), under a
 * frozen teacher of the same shape whose weights moved by
 * 0.5·initializer_range·N(0,1), so its soft targets differ from the student's.
 * Three settings, one gradient each: (fwd) forward KL, α 0.5, T 2; (rev)
 * reverse KL, α 0.25, T 0.7; (soft) forward KL alone, α 0, T 3. Writes
 * kd.teacher_logits (B·T, V) and per setting S: kd.S.settings [alpha,
 * temperature, reverse], kd.S.loss (the loss plus the student's balance loss,
 * as a step trains), kd.S.stats [ce, kl, agree], kd.S.grad.NAME. Returns the
 * CLI status. */
static int dump_kd(dump_list *d, ts_model *m, int *tokens, int *targets, int B, int T, uint64_t seed, int pidx) {
    ts_model teacher;
    memset(&teacher, 0, sizeof teacher);
    ts_rng rng;
    ts_rng_seed(&rng, seed ^ 0x6b64ULL, TS_STREAM_TEST); /* its own draws: the other dumps keep theirs */
    int rc = 0, N = B * T, V = m->cfg.vocab_size, one = 1, three = 3;
    ts_batch b = {.B = B, .T = T, .tokens = tokens, .targets = targets};
    if (grpo_perturbed_copy(&teacher, m, 0.5f * m->cfg.initializer_range, &rng) ||
        ts_model_forward_logits(&teacher, tokens, B, T)) {
        rc = cli_lib_error();
        goto done;
    }
    int shape_nv[2] = {N, V};
    dump_add(d, "kd.teacher_logits", 2, shape_nv, teacher.logits);
    const char *names[3] = {"fwd", "rev", "soft"};
    const ts_kd_opts settings[3] = {{0.5f, 2.0f, 0}, {0.25f, 0.7f, 1}, {0.0f, 3.0f, 0}};
    for (int s = 0; s < 3; s++) {
        float loss;
        ts_kd_result r;
        ts_model_zero_grad(m);
        if (ts_distill_step(m, &teacher, &b, &settings[s], &loss, &r)) {
            rc = cli_lib_error();
            goto done;
        }
        perturb(&m->params, pidx);
        char name[64];
        float set[3] = {settings[s].alpha, settings[s].temperature, (float)settings[s].reverse};
        float stats[3] = {(float)r.ce, (float)r.kl, (float)r.agree};
        snprintf(name, sizeof name, "kd.%s.settings", names[s]);
        dump_add(d, name, 1, &three, set);
        snprintf(name, sizeof name, "kd.%s.loss", names[s]);
        dump_add(d, name, 1, &one, &loss);
        snprintf(name, sizeof name, "kd.%s.stats", names[s]);
        dump_add(d, name, 1, &three, stats);
        snprintf(name, sizeof name, "kd.%s.grad.", names[s]);
        dump_params(d, &m->params, m->params.grad, name);
        printf("dump-grads: kd   %-5s loss %.6f (CE %.6f, KL %.6f, top-1 agreement %.3f)\n", names[s], loss, r.ce,
               r.kl, r.agree);
    }
done:
    ts_model_free(&teacher);
    return rc;
}

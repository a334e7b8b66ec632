/**
 * @file grpo_train.c
 * @brief GRPO training: rollouts, rule rewards, the loss in the shared loop (see grpo_train.h).
 */
#include "train/grpo_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "io/metrics.h"
#include "train/evaluate.h"
#include "train/loss.h"

ts_grpo_train_opts ts_grpo_train_opts_default(void) {
    ts_grpo_train_opts o;
    memset(&o, 0, sizeof o);
    o.algo = TS_ALGO_GRPO;
    o.tmpl = TS_TEMPLATE_R1;
    o.P = 8;
    o.G = 8;
    o.mu = 1;
    o.max_new = 96;
    o.temperature = 1.0f;
    o.sample_seed = 1;
    o.grpo = ts_grpo_opts_default();
    o.reward = ts_reward_opts_default();
    o.value_coef = 0.5f;
    o.value_lr = 1e-3f;
    o.eval_problems = 0;
    return o;
}

/* ------------------------------------------------------------------ */
/* Prompts                                                              */
/* ------------------------------------------------------------------ */

ts_status ts_rl_prompts_build(ts_rl_prompts *p, const bpe_tokenizer *tok, ts_template t, const ts_examples *set) {
    memset(p, 0, sizeof *p);
    if (set->n < 1) return ts_fail(TS_ERR_ARG, "grpo: no prompts to train on");
    p->set = set;
    p->ids = ts_calloc((size_t)set->n, sizeof(int *), "RL prompt ids");
    p->len = ts_calloc((size_t)set->n, sizeof(int), "RL prompt lengths");
    if (!p->ids || !p->len) {
        ts_rl_prompts_free(p);
        return TS_ERR_NOMEM;
    }
    p->n = set->n;
    for (int i = 0; i < set->n; i++) {
        if (!set->ex[i].answer) {
            ts_rl_prompts_free(p);
            return ts_fail(TS_ERR_ARG, "grpo: problem %d has no answer to reward", i + 1);
        }
        int n_prompt = 0;
        ts_status st = ts_chat_encode(tok, t, set->ex[i].prompt, NULL, &p->ids[i], &p->len[i], &n_prompt);
        if (st) {
            ts_rl_prompts_free(p);
            return st;
        }
        if (p->len[i] > p->longest) p->longest = p->len[i];
    }
    return TS_OK;
}

void ts_rl_prompts_free(ts_rl_prompts *p) {
    for (int i = 0; p->ids && i < p->n; i++) free(p->ids[i]);
    free(p->ids);
    free(p->len);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ */
/* Rollouts                                                             */
/* ------------------------------------------------------------------ */

ts_status ts_rollout_sampler_create(ts_rollout_sampler *s, ts_model *policy, const bpe_tokenizer *tok,
                                    const ts_rl_prompts *prompts, const ts_grpo_train_opts *o) {
    memset(s, 0, sizeof *s);
    if (o->P < 1 || o->G < 1 || o->mu < 1 || o->max_new < 1 || !(o->temperature > 0))
        return ts_fail(TS_ERR_ARG, "grpo: %d prompts x %d completions, mu %d, %d new tokens, temperature %g: expected "
                                   "each >= 1 and a temperature > 0",
                       o->P, o->G, o->mu, o->max_new, (double)o->temperature);
    if (o->P > prompts->n)
        return ts_fail(TS_ERR_ARG, "grpo: %d prompts per step, but the RL set has only %d", o->P, prompts->n);
    int max_T = prompts->longest + o->max_new + 1;
    if (max_T > policy->cfg.max_position_embeddings)
        return ts_fail(TS_ERR_RANGE, "grpo: the longest prompt (%d tokens) plus %d new tokens exceeds the model's "
                                     "context (max_position_embeddings %d)",
                       prompts->longest, o->max_new, policy->cfg.max_position_embeddings);
    s->policy = policy;
    s->tok = tok;
    s->prompts = prompts;
    s->o = o;
    int n = o->P * o->G;
    ts_status st = ts_gen_create(&s->gen, policy, n, max_T, o->max_new);
    s->info.problem = ts_calloc((size_t)o->P, sizeof(int), "rollout problems");
    s->info.correct = ts_calloc((size_t)n, sizeof(int), "rollout accuracy");
    s->info.clean = ts_calloc((size_t)n, sizeof(int), "rollout format");
    if (!st && (!s->info.problem || !s->info.correct || !s->info.clean)) st = TS_ERR_NOMEM;
    if (st) ts_rollout_sampler_free(s);
    return st;
}

void ts_rollout_sampler_free(ts_rollout_sampler *s) {
    ts_gen_free(&s->gen);
    free(s->info.problem);
    free(s->info.correct);
    free(s->info.clean);
    memset(s, 0, sizeof *s);
}

//! [grpo-rollout]
ts_status ts_grpo_rollout(ts_rollout_sampler *s, ts_rng *order, long index, ts_rollout *r) {
    const ts_grpo_train_opts *o = s->o;
    const ts_rl_prompts *pr = s->prompts;
    int P = o->P, G = o->G, n = P * G;
    double t0 = ts_now();
    const int **ids = malloc((size_t)P * sizeof *ids);
    int *lens = malloc((size_t)P * sizeof *lens);
    if (!ids || !lens) {
        free(ids);
        free(lens);
        return ts_fail(TS_ERR_NOMEM, "grpo: out of memory for a rollout's prompts");
    }
    for (int g = 0; g < P; g++) { // P distinct problems, from the data-order stream
        int x, again;
        do {
            x = (int)ts_rng_below(order, (uint64_t)pr->n);
            again = 0;
            for (int h = 0; h < g; h++) again |= s->info.problem[h] == x;
        } while (again);
        s->info.problem[g] = x;
        ids[g] = pr->ids[x];
        lens[g] = pr->len[x];
        for (int j = 0; j < G; j++) { // completion j of group g: its own stream, from (seed, rollout, g, j)
            uint64_t stream = (((uint64_t)index << 32) | ((uint64_t)g << 16) | (uint64_t)j) * 8 + TS_STREAM_SAMPLE;
            ts_rng_seed(&s->gen.rng[g * G + j], o->sample_seed, stream);
        }
    }
    ts_gen_opts go = {.sampler = {o->temperature, 0, 1.0f},
                      .max_new = o->max_new,
                      .eos_id = bpe_special_id(s->tok, BPE_EOS),
                      .keep_eos = 1, // ending is an action the policy took: its <|eos|> is trained like any token
                      .stop_id = bpe_special_id(s->tok, BPE_ANSWER_END),
                      .n_valid = s->tok->vocab_size};
    ts_status st = ts_gen_run(&s->gen, s->policy, (const int *const *)ids, lens, P, G, &go);
    int T = 2;
    for (int b = 0; b < n && !st; b++)
        if (lens[b / G] + s->gen.len[b] > T) T = lens[b / G] + s->gen.len[b];
    if (!st) {
        ts_rollout_free(r);
        st = ts_rollout_alloc(r, P, G, T, o->algo != TS_ALGO_RFT && o->grpo.beta > 0);
    }
    long correct = 0, clean = 0;
    int pad = bpe_special_id(s->tok, BPE_PAD), eos = go.eos_id;
    for (int b = 0; b < n && !st; b++) {
        const int *c = s->gen.gen + (size_t)b * s->gen.max_new;
        int c_len = s->gen.len[b], text_len = c_len > 0 && c[c_len - 1] == eos ? c_len - 1 : c_len;
        char *text = NULL;
        size_t text_n = 0;
        if ((st = bpe_decode(s->tok, c, (size_t)text_len, &text, &text_n))) break;
        const ts_example *e = &pr->set->ex[s->info.problem[b / G]];
        ts_reward rw = ts_reward_of(o->tmpl, text, e->answer, &o->reward);
        if (o->reward_fn) rw.reward = o->reward_fn(o->reward_ctx, text, e);
        free(text);
        s->info.correct[b] = rw.correct;
        s->info.clean[b] = rw.format_ok;
        correct += rw.correct;
        clean += rw.format_ok;
        st = ts_rollout_set(r, b, ids[b / G], lens[b / G], c, c_len, rw.reward, pad);
    }
    free(ids);
    free(lens);
    if (st) return st;
    r->has_old = 0; // π_old is the policy that just sampled: ρ = 1 on the first of the μ steps
    s->info.accuracy = (double)correct / n;
    s->info.format_rate = (double)clean / n;
    s->info.seconds = ts_now() - t0;
    return TS_OK;
}
//! [grpo-rollout]

/* ------------------------------------------------------------------ */
/* The run: a batch source that samples, a loss, an evaluation          */
/* ------------------------------------------------------------------ */

//! [value-loss]
double ts_value_loss(float *values, float *d_hidden, float *grad, const float *hidden, const float *head, int C,
                     const ts_rollout *r, float coef) {
    int n = r->P * r->G, T = r->T;
    long tokens = ts_rollout_tokens(r);
    double loss = 0;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)i * T + t;
            const float *h = hidden + k * C;
            double v = head[C]; // V_t = w·h_t + b
            for (int c = 0; c < C; c++) v += (double)head[c] * h[c];
            values[k] = (float)v;
            if (r->targets[k] == TS_IGNORE) continue;
            double err = v - r->rewards[i]; // the return of every state of completion i: its reward (γ = 1)
            loss += 0.5 * coef * err * err / tokens;
            // L = (coef/2n)·Σ (V − r)²: dL/dV = coef·(V − r)/n, dV/dw = h, dV/db = 1, dV/dh = w
            float dv = (float)(coef * err / tokens);
            for (int c = 0; c < C; c++) {
                if (grad) grad[c] += dv * h[c];
                if (d_hidden) d_hidden[k * C + c] += dv * head[c];
            }
            if (grad) grad[C] += dv;
        }
    return loss;
}
//! [value-loss]

enum { N_STATS = 10 };
static const char *const rl_stat_names[N_STATS] = {"reward",         "accuracy",  "format_rate",
                                                   "kl",             "clip_frac", "zero_var_frac",
                                                   "completion_len", "entropy",   "rollout_s",
                                                   "value_loss"};

/* PPO's critic: a linear head on the policy's last hidden state, with its own Adam. */
typedef struct {
    int C;
    float *w;       /* (C+1) weights, then the bias */
    float *g;       /* (C+1) gradient */
    float *m1, *m2; /* (C+1) Adam's moments */
    long t;         /* Adam steps taken */
    float *values;  /* (N) V at every position of the batch */
    float *d_hidden;/* (N, C) the value loss's gradient into the trunk */
    size_t cap;     /* positions values and d_hidden hold */
} value_head;

typedef struct {
    const ts_grpo_train_opts *o;
    ts_model *ref;
    value_head vh; /* PPO only */
    ts_rollout_sampler sampler;
    ts_rollout r;
    int have_rollout;
    ts_batch_source source;
    /* evaluation */
    ts_model *policy;
    const bpe_tokenizer *tok;
    const ts_examples *eval;
    ts_metrics eval_csv;
    int eval_open, resume;
    long last_eval_step;
} rl_run;

static ts_status rollout_next(ts_batch_source *src, ts_batch *out) {
    rl_run *x = src->ctx;
    long step = src->state.pos;
    ts_status st;
    if (step % x->o->mu == 0) { // a fresh rollout batch from the current policy, which becomes π_old
        if ((st = ts_grpo_rollout(&x->sampler, &src->state.rng[0], step / x->o->mu, &x->r))) return st;
        if (x->r.ref_logp && (st = ts_grpo_token_logp(x->ref, &x->r, x->r.ref_logp))) return st;
        x->have_rollout = 1;
    } else if (!x->have_rollout) {
        return ts_fail(TS_ERR_ARG, "grpo: resuming at step %ld, inside a rollout cycle of mu = %d steps (its rollout was "
                                   "sampled by weights that were not saved); resume at a multiple of mu",
                       step, x->o->mu);
    }
    if ((st = ts_rollout_to_batch(&x->r, out))) return st;
    src->state.pos++;
    return TS_OK;
}

//! [ppo-step]
/* PPO's terms on the forward just run: the value head's values; on the first
 * of μ steps the advantages A_t = r − V_old(s_t), whitened over the batch; the
 * clipped objective with those per-token advantages (grpo.c, token-level); the
 * value loss into m->d_logits' companion d_hidden; one Adam step of the head. */
static ts_status ppo_terms(rl_run *x, ts_model *m, ts_grpo_stats *gs, float *loss, double *value_loss) {
    ts_rollout *r = &x->r;
    value_head *vh = &x->vh;
    const ts_grpo_train_opts *o = x->o;
    int n = r->P * r->G, C = vh->C, V = m->cfg.vocab_size;
    size_t N = (size_t)n * r->T;
    if (N > vh->cap) {
        free(vh->values);
        free(vh->d_hidden);
        vh->values = ts_malloc(N * sizeof(float), "PPO values");
        vh->d_hidden = ts_malloc(N * C * sizeof(float), "PPO hidden-state gradient");
        vh->cap = vh->values && vh->d_hidden ? N : 0;
        if (!vh->cap) return TS_ERR_NOMEM;
    }
    memset(vh->d_hidden, 0, N * C * sizeof(float));
    memset(vh->g, 0, (size_t)(C + 1) * sizeof(float));
    double lv = ts_value_loss(vh->values, vh->d_hidden, vh->g, m->hidden, vh->w, C, r, o->value_coef);
    int record = !r->has_old && o->mu > 1;
    if (!r->token_adv) { // the first step on this rollout: V is V_old
        r->token_adv = ts_malloc(N * sizeof(double), "PPO advantages");
        if (!r->token_adv) return TS_ERR_NOMEM;
        double sum = 0, sq = 0, cnt = 0;
        for (size_t k = 0; k < N; k++) {
            r->token_adv[k] = 0.0;
            if (r->targets[k] == TS_IGNORE) continue;
            double a = r->rewards[k / r->T] - vh->values[k]; // GAE, γ = λ = 1, reward at the end: r − V(s_t)
            r->token_adv[k] = a;
            sum += a;
            sq += a * a;
            cnt++;
        }
        double mean = sum / cnt, sd = sqrt(fmax(sq / cnt - mean * mean, 0.0));
        for (size_t k = 0; k < N; k++) // whitened over the batch, as PPO implementations do
            if (r->targets[k] != TS_IGNORE) r->token_adv[k] = (r->token_adv[k] - mean) / (sd + 1e-8);
    }
    ts_grpo_opts po = o->grpo;
    po.norm = TS_GRPO_NORM_TOKEN; // every token weighs the same, as PPO's mean over tokens
    po.drop_zero_var = 0;
    ts_grpo_tokens tok = {.logp = r->old_logp};
    ts_status st = ts_grpo_loss(gs, m->d_logits, record ? &tok : NULL, m->logits, r, &po, V);
    if (st) return st;
    if (record) r->has_old = 1;
    // Adam on the head (β1 0.9, β2 0.999): the loop's AdamW steps the model, not this
    vh->t++;
    double b1 = 0.9, b2 = 0.999, c1 = 1 - pow(b1, (double)vh->t), c2 = 1 - pow(b2, (double)vh->t);
    for (int c = 0; c <= C; c++) {
        vh->m1[c] = (float)(b1 * vh->m1[c] + (1 - b1) * vh->g[c]);
        vh->m2[c] = (float)(b2 * vh->m2[c] + (1 - b2) * (double)vh->g[c] * vh->g[c]);
        vh->w[c] -= (float)(o->value_lr * (vh->m1[c] / c1) / (sqrt(vh->m2[c] / c2) + 1e-8));
    }
    *loss = (float)(gs->loss + lv);
    *value_loss = lv;
    return TS_OK;
}
//! [ppo-step]

//! [grpo-train-step]
/* One step on the current rollout batch: forward, the GRPO (or RFT) loss, backward. */
static ts_status rl_step(void *ctx, ts_model *m, const ts_batch *b, float *loss, double *stats) {
    rl_run *x = ctx;
    ts_rollout *r = &x->r;
    const ts_grpo_train_opts *o = x->o;
    int n = r->P * r->G, N = n * r->T, V = m->cfg.vocab_size;
    if (b->B != n || b->T != r->T) return ts_fail(TS_ERR_ARG, "grpo: the batch is not the current rollout batch");
    ts_status st = ts_model_forward_logits(m, r->tokens, n, r->T);
    if (st) return st;
    memset(m->d_logits, 0, (size_t)N * V * sizeof(float));
    ts_grpo_stats gs;
    float aux_weight = o->grpo.aux_weight;
    if (o->algo == TS_ALGO_GRPO) {
        // the first of μ steps: π_θ is π_old, so the loss's own log π_θ are π_old's for the steps after
        int record = !r->has_old && o->mu > 1;
        ts_grpo_tokens tok = {.logp = r->old_logp};
        if ((st = ts_grpo_loss(&gs, m->d_logits, record ? &tok : NULL, m->logits, r, &o->grpo, V))) return st;
        if (record) r->has_old = 1;
        *loss = (float)(gs.loss + aux_weight * m->aux_loss);
    } else if (o->algo == TS_ALGO_PPO) {
        if ((st = ppo_terms(x, m, &gs, loss, stats + N_STATS - 1))) return st;
        *loss += (float)(aux_weight * m->aux_loss);
        double v[N_STATS - 1] = {gs.reward_mean,   x->sampler.info.accuracy, x->sampler.info.format_rate,
                                 gs.kl,            gs.clip_frac,             gs.zero_var_frac,
                                 gs.completion_len, gs.entropy,              x->sampler.info.seconds};
        memcpy(stats, v, sizeof v);
        return ts_model_backward_from(m, m->d_logits, x->vh.d_hidden, aux_weight);
    } else { // RFT: the mean cross-entropy over the tokens of the right, clean completions
        ts_grpo_opts plain = o->grpo; // for the logged statistics only (no gradient from it)
        plain.beta = 0;
        if ((st = ts_grpo_loss(&gs, NULL, NULL, m->logits, r, &plain, V))) return st;
        float *w = ts_malloc((size_t)N * sizeof(float), "RFT weights");
        if (!w) return TS_ERR_NOMEM;
        long kept = 0;
        for (int i = 0; i < n; i++) {
            int keep = x->sampler.info.correct[i] && x->sampler.info.clean[i];
            for (int t = 0; t < r->T; t++) w[(size_t)i * r->T + t] = keep ? 1.0f : 0.0f;
            kept += keep ? r->completion_len[i] : 0;
        }
        ts_ce_result ce = {0};
        if (kept > 0) st = ts_loss_crossentropy(&ce, m->d_logits, NULL, m->logits, r->targets, w, (double)kept, N, V);
        free(w);
        if (st) return st;
        *loss = (float)(ce.loss + aux_weight * m->aux_loss);
    }
    double v[N_STATS] = {gs.reward_mean,   x->sampler.info.accuracy, x->sampler.info.format_rate,
                         gs.kl,            gs.clip_frac,             gs.zero_var_frac,
                         gs.completion_len, gs.entropy,              x->sampler.info.seconds,
                         NAN};
    memcpy(stats, v, sizeof v);
    return ts_model_backward_from(m, m->d_logits, NULL, aux_weight);
}
//! [grpo-train-step]

/* Held-out greedy pass@1 on the first eval_problems problems: a row of eval.csv. */
static ts_status eval_row(rl_run *x, long step) {
    const ts_grpo_train_opts *o = x->o;
    ts_examples view = {x->eval->ex, o->eval_problems < x->eval->n ? o->eval_problems : x->eval->n};
    ts_eval_opts eo = ts_eval_opts_default();
    eo.tmpl = o->tmpl;
    eo.greedy = 1;
    eo.n_samples = 0;
    eo.max_new = o->max_new;
    eo.quiet = 1;
    ts_eval_problem *res = ts_calloc((size_t)view.n, sizeof *res, "evaluation results");
    if (!res) return TS_ERR_NOMEM;
    ts_status st = ts_evaluate(x->policy, x->tok, &view, &eo, res, NULL, NULL);
    double pass = 0, format = 0, len = 0;
    for (int i = 0; i < view.n; i++) {
        pass += res[i].greedy_correct;
        format += res[i].greedy_format;
        len += res[i].greedy_len;
    }
    free(res);
    if (st) return st;
    if (!x->eval_open) {
        static const char *const cols[] = {"step", "greedy_pass1", "greedy_format", "mean_len"};
        if (x->resume && (st = ts_metrics_truncate_after(o->eval_path, step - 1))) return st;
        if ((st = ts_metrics_open(&x->eval_csv, o->eval_path, cols, 4, x->resume))) return st;
        x->eval_open = 1;
    }
    double row[4] = {(double)step, pass / view.n, format / view.n, len / view.n};
    return ts_metrics_row(&x->eval_csv, row);
}

/* The loop's evaluation hook: a row of eval.csv (once per step); the loop's val_loss column stays empty. */
static float rl_eval(void *ctx, ts_model *m) {
    rl_run *x = ctx;
    long step = x->source.state.pos;
    if (step == x->last_eval_step || !x->o->eval_path) return NAN;
    x->last_eval_step = step;
    if (eval_row(x, step)) fprintf(stderr, "tinyseek: grpo: evaluation at step %ld failed: %s\n", step, ts_last_error());
    (void)m;
    return NAN;
}

/* What a resume must match beyond the loop's own fingerprint. */
static uint64_t rl_fingerprint(uint64_t h, const ts_grpo_train_opts *o) {
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ULL)
    MIX(o->algo);
    MIX(o->tmpl);
    MIX(o->P);
    MIX(o->G);
    MIX(o->mu);
    MIX(o->max_new);
    MIX(o->sample_seed);
    MIX(o->grpo.norm);
    MIX(o->grpo.scale_by_std);
    MIX(o->grpo.drop_zero_var);
    float f[9] = {o->temperature,  o->grpo.eps_low,          o->grpo.eps_high,         o->grpo.beta, o->grpo.adv_eps,
                  o->reward.accuracy_weight, o->reward.format_weight, o->value_coef, o->value_lr};
    for (int i = 0; i < 9; i++) {
        uint32_t bits;
        memcpy(&bits, &f[i], sizeof bits);
        MIX(bits);
    }
#undef MIX
    return h;
}

ts_status ts_grpo_train(ts_model *policy, ts_model *ref, const bpe_tokenizer *tok, const ts_rl_prompts *prompts,
                        const ts_examples *eval, const ts_grpo_train_opts *o, const ts_train_opts *loop,
                        ts_train_result *result) {
    memset(result, 0, sizeof *result);
    if (!policy->params.m) return ts_fail(TS_ERR_ARG, "grpo: the policy was created without optimizer state");
    int need_ref = o->algo != TS_ALGO_RFT && o->grpo.beta > 0;
    if (need_ref && !ref) return ts_fail(TS_ERR_ARG, "grpo: beta %g needs a reference model", (double)o->grpo.beta);
    if (o->grpo.norm == TS_GRPO_NORM_CONSTANT && o->grpo.max_len != o->max_new)
        return ts_fail(TS_ERR_ARG, "grpo: Dr. GRPO's constant must be the generation budget (%d), got %d", o->max_new,
                       o->grpo.max_len);
    if (tok->vocab_size > policy->cfg.vocab_size)
        return ts_fail(TS_ERR_ARG, "grpo: the tokenizer has %d tokens but the model's vocab_size is %d", tok->vocab_size,
                       policy->cfg.vocab_size);
    rl_run *x = ts_calloc(1, sizeof *x, "GRPO run");
    if (!x) return TS_ERR_NOMEM;
    x->o = o;
    x->ref = need_ref ? ref : NULL;
    x->policy = policy;
    x->tok = tok;
    x->eval = eval && o->eval_problems > 0 && eval->n > 0 ? eval : NULL;
    x->resume = loop->resume;
    x->last_eval_step = -1;
    ts_status st = ts_rollout_sampler_create(&x->sampler, policy, tok, prompts, o);
    if (!st && o->algo == TS_ALGO_PPO) { // the critic: C + 1 weights, zero (V = 0 at first), and Adam's two moments
        if (loop->resume) st = ts_fail(TS_ERR_ARG, "ppo: the value head is not saved with the checkpoint: no --resume");
        int C = policy->cfg.hidden_size;
        x->vh.C = C;
        x->vh.w = ts_calloc((size_t)4 * (C + 1), sizeof(float), "PPO value head");
        if (!st && !x->vh.w) st = TS_ERR_NOMEM;
        if (!st) {
            x->vh.g = x->vh.w + (C + 1);
            x->vh.m1 = x->vh.g + (C + 1);
            x->vh.m2 = x->vh.m1 + (C + 1);
        }
    }
    if (st) {
        ts_rollout_sampler_free(&x->sampler);
        free(x->vh.w);
        free(x);
        return st;
    }
    ts_batch_source *src = &x->source;
    src->next = rollout_next;
    src->ctx = x;
    src->B = o->P * o->G;
    src->T = x->sampler.gen.max_T;
    src->with_weights = 0;
    src->state.n_rng = 1;
    ts_rng_seed(&src->state.rng[0], loop->seed, TS_STREAM_DATA); // which prompts, in which order

    ts_train_opts lo = *loop;
    lo.batch_size = src->B;
    lo.seq_len = src->T;
    ts_rl_algo algo = o->algo;
    ts_trainer t = {
        .label = algo == TS_ALGO_GRPO ? "grpo" : algo == TS_ALGO_PPO ? "ppo" : "rft",
        .data = src,
        .loss = {.step = rl_step, .ctx = x, .n_stats = N_STATS, .stat_names = rl_stat_names},
        .eval = x->eval ? rl_eval : NULL,
        .eval_ctx = x,
        .fingerprint = rl_fingerprint(ts_train_fingerprint(policy, &lo), o),
    };
    if (loop->out_dir) st = ts_mkdir_p(loop->out_dir);
    if (!st && x->eval && o->eval_path && !loop->resume) { // before any update: the starting point of the curve
        x->last_eval_step = 0;
        st = eval_row(x, 0);
    }
    if (!st) st = ts_train(policy, &t, &lo, result);
    if (x->eval_open) {
        ts_status cst = ts_metrics_close(&x->eval_csv);
        if (!st) st = cst;
    }
    ts_rollout_free(&x->r);
    ts_rollout_sampler_free(&x->sampler);
    free(x->vh.w);
    free(x->vh.values);
    free(x->vh.d_hidden);
    free(x);
    return st;
}

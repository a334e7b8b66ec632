/* Chapter 2: training — the loss falls below the unigram baseline on the toy
 * data, checkpoints round-trip bit-exactly, an interrupted run resumed from
 * its checkpoint ends with the same bits as an uninterrupted one, the training
 * loop runs any batch source and loss (a cursor-driven source with a loss mask
 * resumes exactly too), and a non-finite loss stops a run before AdamW. */
#include "testutil.h"

#include "data/bpe.h"
#include "data/tasks.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/inspect.h"
#include "train/loop.h"
#include "train/pretrain.h"

static ts_config small_config(int vocab) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = vocab;
    c.hidden_size = 32;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 16;
    c.intermediate_size = 64;
    c.max_position_embeddings = 64;
    return c;
}

/* The toy arithmetic corpus, tokenized with a small BPE trained on it. */
typedef struct {
    bpe_tokenizer tok;
    int *train, *test;
    size_t n_train, n_test;
} toy_data;

static void make_corpus(task_split split, size_t n, char **text, size_t *len) {
    task_config cfg;
    task_config_default(&cfg);
    task_problem *p = calloc(n, sizeof *p);
    assert_int_equal(task_generate(&cfg, 3, split, n, p), TS_OK);
    size_t cap = n * (TASK_PROMPT_MAX + TASK_RESPONSE_MAX + 2), used = 0;
    char *buf = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        task_text t;
        task_render(&p[i], &t);
        used += (size_t)snprintf(buf + used, cap - used, "%s%s\n", t.prompt, t.response);
    }
    free(p);
    *text = buf;
    *len = used;
}

static void toy_data_make(toy_data *d) {
    memset(d, 0, sizeof *d);
    char *train_text, *test_text;
    size_t train_len, test_len;
    make_corpus(TASK_TRAIN, 1500, &train_text, &train_len);
    make_corpus(TASK_TEST, 150, &test_text, &test_len);
    assert_int_equal(bpe_train(&d->tok, train_text, train_len, 300, NULL, NULL), TS_OK);
    assert_int_equal(bpe_encode(&d->tok, train_text, train_len, &d->train, &d->n_train), TS_OK);
    assert_int_equal(bpe_encode(&d->tok, test_text, test_len, &d->test, &d->n_test), TS_OK);
    free(train_text);
    free(test_text);
}

static void toy_data_free(toy_data *d) {
    free(d->train);
    free(d->test);
    bpe_free(&d->tok);
}

static ts_train_opts small_opts(void) {
    ts_train_opts o = ts_train_opts_default();
    o.batch_size = 8;
    o.seq_len = 48;
    o.steps = 80;
    o.warmup = 5;
    o.lr = 1e-2f;
    o.min_lr = 1e-3f;
    o.eval_every = 0;
    o.eval_batches = 2;
    o.quiet = 1;
    return o;
}

static void loss_falls_below_unigram(void **state) {
    (void)state;
    toy_data d;
    toy_data_make(&d);
    ts_config c = small_config(d.tok.vocab_size);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 1), TS_OK);
    ts_model_init_weights(&m, 1);
    ts_token_stream train = {d.train, d.n_train}, test = {d.test, d.n_test};
    double unigram = ts_unigram_entropy(&train, c.vocab_size);
    ts_train_opts o = small_opts();
    float before = ts_eval_loss(&m, &test, o.batch_size, o.seq_len, 2);
    ts_train_result r;
    assert_int_equal(ts_pretrain(&m, &train, &test, &o, &r), TS_OK);
    printf("toy data: unigram entropy %.3f nats, held-out loss %.3f before and %.3f after %ld steps\n", unigram, before,
           r.final_val_loss, r.steps_run);
    assert_true(before > unigram);                 /* an untrained model is worse than unigram... */
    assert_true(r.final_val_loss < 0.6 * unigram); /* ...and training gets well below it */
    ts_model_free(&m);
    toy_data_free(&d);
}

static void checkpoint_roundtrip_is_bit_identical(void **state) {
    (void)state;
    char dir[64];
    tu_tmpdir(dir);
    ts_config c = small_config(50);
    c.tie_word_embeddings = 1;
    ts_model a, b;
    assert_int_equal(ts_model_create(&a, &c, 0), TS_OK);
    ts_model_init_weights(&a, 9);
    assert_int_equal(ts_checkpoint_save(&a, dir, NULL), TS_OK);
    assert_int_equal(ts_checkpoint_load(&b, dir, 0), TS_OK);
    assert_int_equal(b.cfg.tie_word_embeddings, 1);
    assert_int_equal(a.params.numel, b.params.numel);
    assert_memory_equal(a.params.data, b.params.data, a.params.numel * sizeof(float));
    int tokens[20];
    for (int i = 0; i < 20; i++) tokens[i] = (i * 7) % 50;
    assert_int_equal(ts_model_reserve(&a, 1, 20), TS_OK);
    assert_int_equal(ts_model_reserve(&b, 1, 20), TS_OK);
    ts_model_forward(&a, tokens, NULL, 1, 20);
    ts_model_forward(&b, tokens, NULL, 1, 20);
    assert_memory_equal(a.logits, b.logits, 20 * 50 * sizeof(float));
    /* The folder is a Hugging Face folder: tied models store no lm_head. */
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ts_safetensors st;
    assert_int_equal(ts_safetensors_open(&st, path), TS_OK);
    assert_non_null(ts_safetensors_find(&st, "model.embed_tokens.weight"));
    assert_non_null(ts_safetensors_find(&st, "model.layers.1.mlp.down_proj.weight"));
    assert_null(ts_safetensors_find(&st, "lm_head.weight"));
    ts_safetensors_close(&st);

    /* The inspection API (what notebooks use through ctypes) sees the same model. */
    ts_model *o = ts_model_open(dir);
    assert_non_null(o);
    assert_int_equal(ts_model_run(o, tokens, 20), 0);
    ts_view v;
    assert_int_equal(ts_model_view_logits(o, &v), 0);
    assert_int_equal(v.shape[0], 20);
    assert_int_equal(v.shape[1], 50);
    assert_memory_equal(v.data, a.logits, 20 * 50 * sizeof(float));
    assert_int_equal(ts_model_view_attention(o, 1, &v), 0);
    assert_int_equal(v.ndim, 4);
    for (int h = 0; h < v.shape[1]; h++)
        for (int t = 0; t < 20; t++) { /* causal rows of probabilities */
            double sum = 0;
            for (int s = 0; s < 20; s++) {
                float p = v.data[((size_t)h * 20 + t) * 20 + s];
                if (s > t) assert_true(p == 0.0f);
                sum += p;
            }
            assert_true(fabs(sum - 1.0) < 1e-5);
        }
    assert_int_equal(ts_model_view_param(o, "model.norm.weight", &v), 0);
    assert_int_equal(v.ndim, 1);
    assert_int_equal(v.shape[0], 32);
    assert_int_equal(ts_model_view_param(o, "lm_head.weight", &v), -1); /* tied: there is none */
    assert_int_equal(ts_model_view_attention(o, 2, &v), -1);
    int bad = 50;
    assert_int_equal(ts_model_run(o, &bad, 1), -1);
    ts_model_close(o);
    char nodir[128];
    snprintf(nodir, sizeof nodir, "%s/nothing-here", dir);
    assert_null(ts_model_open(nodir));
    ts_model_free(&a);
    ts_model_free(&b);
    tu_rmdir(dir);
}

/* Run the same training twice: once straight through, once stopped at step 5
 * and resumed from its checkpoint in a fresh model. Same bits at the end. */
static void resume_is_bit_identical(void **state) {
    (void)state;
    toy_data d;
    toy_data_make(&d);
    ts_config c = small_config(d.tok.vocab_size);
    ts_token_stream train = {d.train, d.n_train}, test = {d.test, d.n_test};
    char dir_a[64], dir_b[64], metrics_b[128];
    tu_tmpdir(dir_a);
    tu_tmpdir(dir_b);
    snprintf(metrics_b, sizeof metrics_b, "%s/metrics.csv", dir_b);
    ts_train_opts o = small_opts();
    o.steps = 12;
    o.eval_every = 4;
    ts_train_result r;

    ts_model a;
    assert_int_equal(ts_model_create(&a, &c, 1), TS_OK);
    ts_model_init_weights(&a, 4);
    o.out_dir = dir_a;
    assert_int_equal(ts_pretrain(&a, &train, &test, &o, &r), TS_OK);
    assert_int_equal(r.steps_run, 12);

    ts_model b1;
    assert_int_equal(ts_model_create(&b1, &c, 1), TS_OK);
    ts_model_init_weights(&b1, 4);
    o.out_dir = dir_b;
    o.metrics_path = metrics_b;
    o.stop_after = 5;
    assert_int_equal(ts_pretrain(&b1, &train, &test, &o, &r), TS_OK);
    assert_int_equal(r.steps_run, 5);
    ts_model_free(&b1);

    ts_model b2; /* a fresh process would start like this: new model, --resume */
    assert_int_equal(ts_model_create(&b2, &c, 1), TS_OK);
    ts_model_init_weights(&b2, 123); /* deliberately different: resume must overwrite it */
    o.stop_after = 0;
    o.resume = 1;
    assert_int_equal(ts_pretrain(&b2, &train, &test, &o, &r), TS_OK);
    assert_int_equal(r.steps_run, 7);
    assert_memory_equal(a.params.data, b2.params.data, a.params.numel * sizeof(float));
    assert_memory_equal(a.params.m, b2.params.m, a.params.numel * sizeof(float));
    assert_memory_equal(a.params.v, b2.params.v, a.params.numel * sizeof(float));

    /* One metrics row per step, header included: 13 lines. */
    char out[8192];
    assert_int_equal(tu_run(out, sizeof out, "cat '%s'", metrics_b), 0);
    assert_int_equal(tu_count_lines(out), 13);

    /* Resuming with other settings is refused, naming the file. */
    o.lr = 5e-3f;
    assert_int_not_equal(ts_pretrain(&b2, &train, &test, &o, &r), TS_OK);
    assert_non_null(strstr(ts_last_error(), "training_state"));
    ts_model_free(&a);
    ts_model_free(&b2);
    tu_rmdir(dir_a);
    tu_rmdir(dir_b);
    toy_data_free(&d);
}

/* ---- the loop with another batch source and loss (what SFT will hand it) ---- */

/* Walks the stream in order (state.pos = batches handed out, no RNG) and masks
 * the first half of every row out of the loss, as SFT masks a prompt. */
static ts_status in_order_next(ts_batch_source *src, ts_batch *out) {
    const ts_token_stream *s = src->ctx;
    size_t windows = (s->n - 1) / (size_t)src->T, starts[4];
    for (int b = 0; b < src->B; b++) starts[b] = ((size_t)src->state.pos * src->B + b) % windows * src->T;
    out->B = src->B;
    out->T = src->T;
    ts_windows_fill(s, starts, src->B, src->T, out->tokens, out->targets);
    for (int b = 0; b < src->B; b++)
        for (int t = 0; t < src->T / 2; t++) out->targets[b * src->T + t] = TS_IGNORE;
    src->state.pos++;
    return TS_OK;
}

typedef struct {
    long calls[32]; /* the steps after_backward saw */
    int n;
    double grad_sq; /* sum of squared gradients it saw, all steps */
} hook_log;

static ts_status masked_loss(void *ctx, ts_model *m, const ts_batch *b, float *loss, double *stats) {
    *loss = ts_model_forward(m, b->tokens, b->targets, b->B, b->T);
    ts_model_backward(m);
    stats[0] = m->n_counted; /* an extra CSV column */
    return TS_OK;
}

static ts_status count_hook(void *ctx, ts_model *m, long step) {
    hook_log *h = ctx;
    if (h->n < 32) h->calls[h->n++] = step;
    for (size_t i = 0; i < m->params.numel; i++) h->grad_sq += (double)m->params.grad[i] * m->params.grad[i];
    return TS_OK;
}

static void run_custom(ts_model *m, const ts_token_stream *train, ts_train_opts *o, hook_log *h, ts_train_result *r,
                       long *final_pos) {
    static const char *const names[] = {"counted"};
    ts_batch_source src = {.next = in_order_next, .ctx = (void *)train, .B = 4, .T = 16};
    ts_trainer t = {.label = "custom",
                    .data = &src,
                    .loss = {.step = masked_loss, .n_stats = 1, .stat_names = names},
                    .after_backward = count_hook,
                    .after_backward_ctx = h,
                    .fingerprint = ts_train_fingerprint(m, o)};
    assert_int_equal(ts_train(m, &t, o, r), TS_OK);
    *final_pos = src.state.pos;
}

static void loop_runs_any_source_and_loss(void **state) {
    (void)state;
    toy_data d;
    toy_data_make(&d);
    ts_config c = small_config(d.tok.vocab_size);
    ts_token_stream train = {d.train, d.n_train};
    char dir_a[64], dir_b[64], csv[128];
    tu_tmpdir(dir_a);
    tu_tmpdir(dir_b);
    ts_train_opts o = small_opts();
    o.batch_size = 4;
    o.seq_len = 16;
    o.steps = 6;
    ts_train_result r;
    long pos;

    ts_model a;
    assert_int_equal(ts_model_create(&a, &c, 1), TS_OK);
    ts_model_init_weights(&a, 5);
    hook_log ha = {0};
    o.out_dir = dir_a;
    run_custom(&a, &train, &o, &ha, &r, &pos);
    assert_int_equal(pos, 6);
    assert_int_equal(ha.n, 6); /* the hook ran once per step, after the backward (gradients present) */
    for (int i = 0; i < 6; i++) assert_int_equal(ha.calls[i], i);
    assert_true(ha.grad_sq > 0);

    ts_model b;
    assert_int_equal(ts_model_create(&b, &c, 1), TS_OK);
    ts_model_init_weights(&b, 5);
    hook_log hb = {0};
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir_b);
    o.out_dir = dir_b;
    o.metrics_path = csv;
    o.stop_after = 4;
    run_custom(&b, &train, &o, &hb, &r, &pos);
    assert_int_equal(pos, 4);
    ts_model_init_weights(&b, 77); /* resume must overwrite the weights... */
    o.stop_after = 0;
    o.resume = 1;
    run_custom(&b, &train, &o, &hb, &r, &pos); /* ...and the cursor, from 0 back to 4 */
    assert_int_equal(r.steps_run, 2);
    assert_int_equal(pos, 6);
    assert_memory_equal(a.params.data, b.params.data, a.params.numel * sizeof(float));
    assert_memory_equal(a.params.v, b.params.v, a.params.numel * sizeof(float));

    /* The loss's own column follows the usual seven: half of each row counted. */
    char out[4096];
    assert_int_equal(tu_run(out, sizeof out, "head -2 '%s'", csv), 0);
    assert_non_null(strstr(out, "step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s,counted\n1,"));
    assert_non_null(strstr(out, ",32\n")); /* B · T/2 = 4 · 8 targets */
    ts_model_free(&a);
    ts_model_free(&b);
    tu_rmdir(dir_a);
    tu_rmdir(dir_b);
    toy_data_free(&d);
}

/* A NaN weight in layer 1's MLP: step 1's loss is NaN; the run stops there,
 * before AdamW, naming the step and the first layer whose output is not finite. */
static void nonfinite_loss_stops_before_adamw(void **state) {
    (void)state;
    toy_data d;
    toy_data_make(&d);
    ts_config c = small_config(d.tok.vocab_size);
    ts_token_stream train = {d.train, d.n_train};
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 1), TS_OK);
    ts_model_init_weights(&m, 3);
    m.w.layers[1].mlp.down_proj[7] = NAN;
    float *before = malloc(m.params.numel * sizeof(float));
    memcpy(before, m.params.data, m.params.numel * sizeof(float));
    ts_train_opts o = small_opts();
    o.steps = 3;
    ts_train_result r;
    assert_int_equal(ts_pretrain(&m, &train, NULL, &o, &r), TS_ERR_RANGE);
    assert_int_equal(r.diverged_step, 1);
    const char *e = ts_last_error();
    printf("%s\n", e);
    assert_non_null(strstr(e, "step 1:"));
    assert_non_null(strstr(e, "model.layers.1.mlp output"));
    assert_null(strchr(e, '\n'));
    for (size_t i = 0; i < m.params.numel; i++) {
        assert_true(m.params.m[i] == 0.0f); /* AdamW never ran: no moment moved, */
        assert_true(memcmp(&m.params.data[i], &before[i], sizeof(float)) == 0); /* no weight (the NaN included) */
    }
    free(before);
    ts_model_free(&m);
    toy_data_free(&d);
}

/* A gradient poisoned after the backward (by the hook, where appendix C will
 * sum gradients over ranks): the loss is finite, the gradient norm is not.
 * The run stops before AdamW, naming the first parameter with a bad gradient. */
typedef struct {
    float *w, *m; /* weights and first moments as the poisoned step found them */
    size_t n;
} snapshot;

static ts_status poison_grad(void *ctx, ts_model *m, long step) {
    snapshot *s = ctx;
    if (step != 2) return TS_OK;
    memcpy(s->w, m->params.data, s->n * sizeof(float));
    memcpy(s->m, m->params.m, s->n * sizeof(float));
    m->g.layers[0].attn.o_proj[3] = INFINITY;
    return TS_OK;
}

static void nonfinite_gradient_stops_before_adamw(void **state) {
    (void)state;
    toy_data d;
    toy_data_make(&d);
    ts_config c = small_config(d.tok.vocab_size);
    ts_token_stream train = {d.train, d.n_train};
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, 1), TS_OK);
    ts_model_init_weights(&m, 3);
    ts_train_opts o = small_opts();
    o.steps = 5;
    snapshot snap = {malloc(m.params.numel * sizeof(float)), malloc(m.params.numel * sizeof(float)), m.params.numel};
    ts_batch_source src;
    assert_int_equal(ts_windows_source(&src, &train, o.batch_size, o.seq_len, o.seed), TS_OK);
    ts_trainer t = {.label = "poisoned",
                    .data = &src,
                    .loss = {.step = masked_loss, .n_stats = 1, .stat_names = (const char *const[]){"counted"}},
                    .after_backward = poison_grad,
                    .after_backward_ctx = &snap,
                    .fingerprint = ts_train_fingerprint(&m, &o)};
    ts_train_result r;
    assert_int_equal(ts_train(&m, &t, &o, &r), TS_ERR_RANGE);
    const char *e = ts_last_error();
    printf("%s\n", e);
    assert_int_equal(r.diverged_step, 3);
    assert_non_null(strstr(e, "poisoned: step 3:")); /* (clipping by an infinite norm turned the inf into nan) */
    assert_non_null(strstr(e, "first non-finite gradient: model.layers.0.self_attn.o_proj.weight (element 3 is "));
    assert_null(strchr(e, '\n'));
    assert_memory_equal(m.params.data, snap.w, snap.n * sizeof(float)); /* AdamW did not run */
    assert_memory_equal(m.params.m, snap.m, snap.n * sizeof(float));
    free(snap.w);
    free(snap.m);
    ts_model_free(&m);
    toy_data_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loss_falls_below_unigram),
        cmocka_unit_test(checkpoint_roundtrip_is_bit_identical),
        cmocka_unit_test(resume_is_bit_identical),
        cmocka_unit_test(loop_runs_any_source_and_loss),
        cmocka_unit_test(nonfinite_loss_stops_before_adamw),
        cmocka_unit_test(nonfinite_gradient_stops_before_adamw),
    };
    return cmocka_run_group_tests_name("ch02_train", tests, NULL, NULL);
}

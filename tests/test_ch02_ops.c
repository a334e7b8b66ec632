/* Chapter 2 ops: every backward against finite differences, the fast paths
 * against their references, RoPE/YaRN properties, and thread determinism. */
#include "testutil.h"

#include "core/gradcheck.h"
#include "core/ops.h"

/* Gradient checks. The ops compute in float32; the checker sums the loss in
 * double and takes 4th-order central differences with step GC_H. The numeric
 * gradient then carries two errors: the float32 rounding of the loss divided
 * by the step (~1e-7/h) and the truncation of the difference formula (~h⁴);
 * they balance near h = (6e-8)^(1/5) ≈ 0.03 for O(1) inputs. (With h = 1e-2
 * attention's dk, whose gradients are small next to the loss, came within 2x
 * of the tolerance from rounding alone; with h = 1e-1 RMSNorm's truncation
 * error shows.) Relative to each tensor's largest gradient, analytic and
 * numeric gradients must agree to GC_TOL. */
#define GC_H 3e-2
#define GC_TOL 1e-4

/* loss = Σ w·out, accumulated in double; w is a fixed random tensor, so
 * dL/dout = w is what every backward below receives as dout. */
static double weighted_sum(const float *w, const float *out, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * out[i];
    return s;
}

static float *tensor(size_t n, float scale, uint64_t seed) {
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    tu_fill(x, n, scale, seed);
    return x;
}

static float *zeros(size_t n) {
    float *x = calloc(n, sizeof(float));
    assert_non_null(x);
    return x;
}

/* Check, print the per-tensor report, and require the worst error <= GC_TOL. */
static void check_grads(ts_loss_fn loss, void *ctx, const ts_gc_tensor *tensors, int n) {
    double worst = ts_gradcheck(loss, ctx, tensors, n, GC_H, 0, NULL, stdout);
    assert_false(isnan(worst));
    assert_true(worst <= GC_TOL);
}

/* ------------------------------------------------------------------ */
/* Gradient checks, one op at a time                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    int N, C, OC;
    float *inp, *weight, *bias, *out, *w;
} matmul_ctx;

static double matmul_loss(void *p) {
    matmul_ctx *c = p;
    matmul_forward(c->out, c->inp, c->weight, c->bias, c->N, c->C, c->OC);
    return weighted_sum(c->w, c->out, (size_t)c->N * c->OC);
}

static void gradcheck_matmul(void **state) {
    (void)state;
    matmul_ctx c = {.N = 3, .C = 5, .OC = 4};
    c.inp = tensor(15, 1.0f, 1);
    c.weight = tensor(20, 1.0f, 2);
    c.bias = tensor(4, 1.0f, 3);
    c.out = zeros(12);
    c.w = tensor(12, 1.0f, 4);
    float *dinp = zeros(15), *dweight = zeros(20), *dbias = zeros(4);
    matmul_backward(dinp, dweight, dbias, c.w, c.inp, c.weight, c.N, c.C, c.OC);
    ts_gc_tensor t[] = {{"matmul.dinp", c.inp, dinp, 15},
                        {"matmul.dweight", c.weight, dweight, 20},
                        {"matmul.dbias", c.bias, dbias, 4}};
    check_grads(matmul_loss, &c, t, 3);
    free(c.inp); free(c.weight); free(c.bias); free(c.out); free(c.w);
    free(dinp); free(dweight); free(dbias);
}

typedef struct {
    int N, C;
    const int *tokens;
    float *table, *out, *w;
} embedding_ctx;

static double embedding_loss(void *p) {
    embedding_ctx *c = p;
    embedding_forward(c->out, c->tokens, c->table, c->N, c->C);
    return weighted_sum(c->w, c->out, (size_t)c->N * c->C);
}

static void gradcheck_embedding(void **state) {
    (void)state;
    const int tokens[6] = {2, 0, 5, 2, 6, 2}; /* repeats must add up; 1, 3, 4 get nothing */
    embedding_ctx c = {.N = 6, .C = 4, .tokens = tokens};
    c.table = tensor(7 * 4, 1.0f, 5);
    c.out = zeros(24);
    c.w = tensor(24, 1.0f, 6);
    float *dtable = zeros(28);
    embedding_backward(dtable, c.w, tokens, c.N, c.C);
    ts_gc_tensor t[] = {{"embedding.dtable", c.table, dtable, 28}};
    check_grads(embedding_loss, &c, t, 1);
    for (int i = 0; i < 4; i++) assert_true(dtable[1 * 4 + i] == 0.0f && dtable[3 * 4 + i] == 0.0f);
    free(c.table); free(c.out); free(c.w); free(dtable);
}

typedef struct {
    int N, C, in_stride, out_stride;
    float *inp, *weight, *out, *rstd, *w;
} rmsnorm_ctx;

static double rmsnorm_loss(void *p) {
    rmsnorm_ctx *c = p;
    rmsnorm_forward(c->out, c->rstd, c->inp, c->weight, c->N, c->C, c->in_stride, c->out_stride, 1e-5f);
    return weighted_sum(c->w, c->out, (size_t)c->N * c->out_stride);
}

static void gradcheck_rmsnorm_strided(void **state) {
    (void)state;
    /* rows of 8 inside rows of 11 (input) and 10 (output): the gaps must stay untouched */
    rmsnorm_ctx c = {.N = 3, .C = 8, .in_stride = 11, .out_stride = 10};
    size_t nin = 3 * 11, nout = 3 * 10;
    c.inp = tensor(nin, 1.0f, 7);
    c.weight = tensor(8, 0.5f, 8);
    for (int i = 0; i < 8; i++) c.weight[i] += 1.0f;
    c.out = zeros(nout);
    c.rstd = zeros(3);
    c.w = tensor(nout, 1.0f, 9);
    rmsnorm_loss(&c); /* fills rstd for the backward */
    float *dinp = zeros(nin), *dweight = zeros(8);
    rmsnorm_backward(dinp, dweight, c.w, c.inp, c.weight, c.rstd, c.N, c.C, c.in_stride, c.out_stride);
    ts_gc_tensor t[] = {{"rmsnorm.dinp", c.inp, dinp, nin}, {"rmsnorm.dweight", c.weight, dweight, 8}};
    check_grads(rmsnorm_loss, &c, t, 2);
    for (int n = 0; n < 3; n++)
        for (int i = 8; i < 11; i++) assert_true(dinp[n * 11 + i] == 0.0f);
    free(c.inp); free(c.weight); free(c.out); free(c.rstd); free(c.w); free(dinp); free(dweight);
}

typedef struct {
    int N, H, row_stride, head_stride, dim;
    const int *pos;
    const float *cos_t, *sin_t;
    float *x, *y, *w;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t n = (size_t)c->N * c->row_stride;
    memcpy(c->y, c->x, n * sizeof(float));
    rope_forward(c->y, c->pos, c->N, c->H, c->row_stride, c->head_stride, c->dim, c->cos_t, c->sin_t);
    return weighted_sum(c->w, c->y, n);
}

static void gradcheck_rope(void **state) {
    (void)state;
    /* 2 heads of 6 dims, of which the first 4 rotate, in rows of 13 */
    const int pos[4] = {0, 3, 1, 7};
    float inv_freq[2], cos_t[8 * 2], sin_t[8 * 2];
    rope_inv_freq(inv_freq, 4, 10.0f, NULL);
    rope_table(cos_t, sin_t, inv_freq, 4, 8);
    rope_ctx c = {.N = 4, .H = 2, .row_stride = 13, .head_stride = 6, .dim = 4, .pos = pos,
                  .cos_t = cos_t, .sin_t = sin_t};
    size_t n = 4 * 13;
    c.x = tensor(n, 1.0f, 10);
    c.y = zeros(n);
    c.w = tensor(n, 1.0f, 11);
    float *dx = malloc(n * sizeof(float));
    memcpy(dx, c.w, n * sizeof(float)); /* rope_backward works in place on dout */
    rope_backward(dx, pos, c.N, c.H, c.row_stride, c.head_stride, c.dim, cos_t, sin_t);
    ts_gc_tensor t[] = {{"rope.dx", c.x, dx, n}};
    check_grads(rope_loss, &c, t, 1);
    free(c.x); free(c.y); free(c.w); free(dx);
}

typedef struct {
    int N, V;
    float *inp, *out, *w;
} softmax_ctx;

static double softmax_loss(void *p) {
    softmax_ctx *c = p;
    softmax_forward(c->out, c->inp, c->N, c->V);
    return weighted_sum(c->w, c->out, (size_t)c->N * c->V);
}

static void gradcheck_softmax(void **state) {
    (void)state;
    softmax_ctx c = {.N = 3, .V = 6};
    c.inp = tensor(18, 2.0f, 12);
    c.out = zeros(18);
    c.w = tensor(18, 1.0f, 13);
    softmax_loss(&c);
    float *dinp = zeros(18);
    softmax_backward(dinp, c.w, c.out, c.N, c.V);
    ts_gc_tensor t[] = {{"softmax.dinp", c.inp, dinp, 18}};
    check_grads(softmax_loss, &c, t, 1);
    free(c.inp); free(c.out); free(c.w); free(dinp);
}

typedef struct {
    int B, T, H, Dqk, Dv;
    float scale;
    float *q, *k, *v, *out, *att, *w;
} attention_ctx;

static double attention_loss(void *p) {
    attention_ctx *c = p;
    attention_forward(c->out, c->att, c->q, c->k, c->v, c->B, c->T, c->H, c->Dqk, c->Dv, c->scale);
    return weighted_sum(c->w, c->out, (size_t)c->B * c->T * c->H * c->Dv);
}

static void gradcheck_attention_shape(int Dqk, int Dv, const char *tag) {
    attention_ctx c = {.B = 2, .T = 5, .H = 2, .Dqk = Dqk, .Dv = Dv};
    c.scale = 1.0f / sqrtf((float)Dqk);
    size_t nqk = 2 * 5 * 2 * (size_t)Dqk, nv = 2 * 5 * 2 * (size_t)Dv;
    c.q = tensor(nqk, 1.0f, 14);
    c.k = tensor(nqk, 1.0f, 15);
    c.v = tensor(nv, 1.0f, 16);
    c.out = zeros(nv);
    c.att = zeros(2 * 2 * 5 * 5);
    c.w = tensor(nv, 1.0f, 17);
    attention_loss(&c);
    float *dq = zeros(nqk), *dk = zeros(nqk), *dv = zeros(nv);
    float *scratch = zeros((size_t)ts_num_threads() * 5 * 5);
    attention_backward(dq, dk, dv, scratch, c.w, c.att, c.q, c.k, c.v, c.B, c.T, c.H, c.Dqk, c.Dv, c.scale);
    char nq[48], nk[48], nvn[48];
    snprintf(nq, sizeof nq, "attention%s.dq", tag);
    snprintf(nk, sizeof nk, "attention%s.dk", tag);
    snprintf(nvn, sizeof nvn, "attention%s.dv", tag);
    ts_gc_tensor t[] = {{nq, c.q, dq, nqk}, {nk, c.k, dk, nqk}, {nvn, c.v, dv, nv}};
    check_grads(attention_loss, &c, t, 3);
    free(c.q); free(c.k); free(c.v); free(c.out); free(c.att); free(c.w);
    free(dq); free(dk); free(dv); free(scratch);
}

static void gradcheck_attention(void **state) {
    (void)state;
    gradcheck_attention_shape(4, 4, "");
    gradcheck_attention_shape(6, 3, "(Dqk6,Dv3)"); /* MLA's case: Dqk != Dv */
}

typedef struct {
    long n;
    float *gate, *up, *out, *w;
} swiglu_ctx;

static double swiglu_loss(void *p) {
    swiglu_ctx *c = p;
    swiglu_forward(c->out, c->gate, c->up, c->n);
    return weighted_sum(c->w, c->out, (size_t)c->n);
}

static void gradcheck_swiglu(void **state) {
    (void)state;
    swiglu_ctx c = {.n = 12};
    c.gate = tensor(12, 4.0f, 18);
    c.up = tensor(12, 1.0f, 19);
    c.out = zeros(12);
    c.w = tensor(12, 1.0f, 20);
    float *dgate = zeros(12), *dup = zeros(12);
    swiglu_backward(dgate, dup, c.w, c.gate, c.up, c.n);
    ts_gc_tensor t[] = {{"swiglu.dgate", c.gate, dgate, 12}, {"swiglu.dup", c.up, dup, 12}};
    check_grads(swiglu_loss, &c, t, 2);
    free(c.gate); free(c.up); free(c.out); free(c.w); free(dgate); free(dup);
}

typedef struct {
    int N, V;
    const int *targets;
    float *logits, *losses, *w;
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    crossentropy_forward(c->losses, c->logits, c->targets, c->N, c->V);
    return weighted_sum(c->w, c->losses, (size_t)c->N);
}

static void gradcheck_crossentropy(void **state) {
    (void)state;
    const int targets[5] = {3, TS_IGNORE, 0, 6, TS_IGNORE};
    ce_ctx c = {.N = 5, .V = 7, .targets = targets};
    c.logits = tensor(35, 3.0f, 21);
    c.losses = zeros(5);
    c.w = tensor(5, 1.0f, 22); /* per-row dloss */
    float *dlogits = zeros(35);
    crossentropy_backward(dlogits, c.w, c.logits, targets, c.N, c.V);
    ts_gc_tensor t[] = {{"crossentropy.dlogits", c.logits, dlogits, 35}};
    check_grads(ce_loss, &c, t, 1);
    free(c.logits); free(c.losses); free(c.w); free(dlogits);
}

/* ------------------------------------------------------------------ */
/* The checker itself                                                  */
/* ------------------------------------------------------------------ */

static void gradcheck_catches_a_wrong_gradient(void **state) {
    (void)state;
    matmul_ctx c = {.N = 3, .C = 5, .OC = 4};
    c.inp = tensor(15, 1.0f, 1);
    c.weight = tensor(20, 1.0f, 2);
    c.out = zeros(12);
    c.w = tensor(12, 1.0f, 4);
    float *dweight = zeros(20);
    matmul_backward(NULL, dweight, NULL, c.w, c.inp, c.weight, c.N, c.C, c.OC);
    float *before = malloc(20 * sizeof(float));
    memcpy(before, c.weight, 20 * sizeof(float));
    ts_gc_tensor t[] = {{"matmul.dweight(right)", c.weight, dweight, 20}};
    ts_gc_result r;
    assert_true(ts_gradcheck(matmul_loss, &c, t, 1, GC_H, 0, &r, stdout) <= GC_TOL);
    assert_int_equal(r.checked, 20);
    /* the values are restored to the bit */
    assert_memory_equal(before, c.weight, 20 * sizeof(float));

    /* one element off by 1% of the tensor's scale: found, and pinned to that element */
    dweight[13] += 0.01f * (float)r.grad_scale;
    t[0].name = "matmul.dweight(wrong#13)";
    assert_true(ts_gradcheck(matmul_loss, &c, t, 1, GC_H, 0, &r, stdout) > 10 * GC_TOL);
    assert_int_equal(r.worst, 13);
    dweight[13] -= 0.01f * (float)r.grad_scale;

    /* sampling 4 of 20 elements checks 0, 6, 12 and 19: an error in the last one is seen */
    dweight[19] += 0.01f * (float)r.grad_scale;
    t[0].name = "matmul.dweight(wrong#19)";
    assert_true(ts_gradcheck(matmul_loss, &c, t, 1, GC_H, 4, &r, stdout) > 10 * GC_TOL);
    assert_int_equal(r.checked, 4);
    assert_int_equal(r.worst, 19);
    /* a NaN gradient never passes */
    dweight[0] = NAN;
    assert_true(isnan(ts_gradcheck(matmul_loss, &c, t, 1, GC_H, 4, &r, NULL)));
    free(c.inp); free(c.weight); free(c.out); free(c.w); free(dweight); free(before);
}

/* ------------------------------------------------------------------ */
/* Fast paths against references                                       */
/* ------------------------------------------------------------------ */

#define FAST_TOL 1e-5

static void matmul_fast_matches_ref_one(int N, int C, int OC, uint64_t seed) {
    float *inp = tensor((size_t)N * C, 1.0f, seed), *weight = tensor((size_t)OC * C, 1.0f, seed + 1);
    float *bias = tensor((size_t)OC, 1.0f, seed + 2), *dout = tensor((size_t)N * OC, 1.0f, seed + 3);
    float *out = tensor((size_t)N * OC, 9.0f, 0), *out_ref = tensor((size_t)N * OC, 9.0f, 0);
    /* gradients start non-zero, so the += is tested too */
    float *dinp = tensor((size_t)N * C, 1.0f, seed + 4), *dinp_ref = tensor((size_t)N * C, 1.0f, seed + 4);
    float *dw = tensor((size_t)OC * C, 1.0f, seed + 5), *dw_ref = tensor((size_t)OC * C, 1.0f, seed + 5);
    float *db = tensor((size_t)OC, 1.0f, seed + 6), *db_ref = tensor((size_t)OC, 1.0f, seed + 6);

    matmul_forward(out, inp, weight, bias, N, C, OC);
    matmul_forward_ref(out_ref, inp, weight, bias, N, C, OC);
    assert_true(tu_rel_err(out, out_ref, (size_t)N * OC) <= FAST_TOL);
    matmul_forward(out, inp, weight, NULL, N, C, OC);
    matmul_forward_ref(out_ref, inp, weight, NULL, N, C, OC);
    assert_true(tu_rel_err(out, out_ref, (size_t)N * OC) <= FAST_TOL);

    matmul_backward(dinp, dw, db, dout, inp, weight, N, C, OC);
    matmul_backward_ref(dinp_ref, dw_ref, db_ref, dout, inp, weight, N, C, OC);
    double e1 = tu_rel_err(dinp, dinp_ref, (size_t)N * C);
    double e2 = tu_rel_err(dw, dw_ref, (size_t)OC * C);
    double e3 = tu_rel_err(db, db_ref, (size_t)OC);
    if (e1 > FAST_TOL || e2 > FAST_TOL || e3 > FAST_TOL)
        fail_msg("matmul N=%d C=%d OC=%d: dinp %.2e dweight %.2e dbias %.2e", N, C, OC, e1, e2, e3);
    free(inp); free(weight); free(bias); free(dout); free(out); free(out_ref);
    free(dinp); free(dinp_ref); free(dw); free(dw_ref); free(db); free(db_ref);
}

static void matmul_fast_matches_ref(void **state) {
    (void)state;
    printf("matmul backend: %s\n", ts_matmul_backend());
    const int sizes[4] = {1, 3, 17, 129};
    uint64_t seed = 100;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++, seed += 10)
                matmul_fast_matches_ref_one(sizes[a], sizes[b], sizes[c], seed);
    /* past the C loops' block sizes (KC = 256 over C, NC = 1024 over OC) */
    matmul_fast_matches_ref_one(70, 300, 1030, 999);
}

static void sgemm_fast_matches_ref(void **state) {
    (void)state;
    /* M = 19: the blocked loops (past KC = 256 over K); M = 3: the few-row path of decode steps */
    const int Ms[2] = {19, 3}, N = 45, K = 300;
    for (int mi = 0; mi < 2; mi++) {
        int M = Ms[mi];
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                /* leading dimensions wider than the rows they hold */
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
                size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                float *A = tensor(na, 1.0f, 200 + ta), *B = tensor(nb, 1.0f, 300 + tb);
                float *C = tensor(nc, 1.0f, 400), *C_ref = tensor(nc, 1.0f, 400);
                ts_sgemm(ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.3f, C, ldc);
                ts_sgemm_ref(ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.3f, C_ref, ldc);
                double e = tu_rel_err(C, C_ref, nc);
                if (e > FAST_TOL) fail_msg("sgemm M=%d ta=%d tb=%d beta=0.3: %.2e", M, ta, tb, e);
                /* the padding between rows of C is never written */
                float *C_orig = tensor(nc, 1.0f, 400);
                for (int i = 0; i < M; i++)
                    for (int j = N; j < ldc; j++) assert_true(C[(size_t)i * ldc + j] == C_orig[(size_t)i * ldc + j]);
                /* beta = 0: C is not read, so NaN there must not leak into the result */
                for (size_t i = 0; i < nc; i++) C[i] = C_ref[i] = NAN;
                ts_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
                ts_sgemm_ref(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C_ref, ldc);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) assert_false(isnan(C[(size_t)i * ldc + j]));
                for (size_t i = 0; i < nc; i++)
                    if (isnan(C[i])) C[i] = C_ref[i] = 0.0f; /* padding */
                e = tu_rel_err(C, C_ref, nc);
                if (e > FAST_TOL) fail_msg("sgemm M=%d ta=%d tb=%d beta=0: %.2e", M, ta, tb, e);
                free(A); free(B); free(C); free(C_ref); free(C_orig);
            }
        }
    }
}

static void attention_fast_matches_ref(void **state) {
    (void)state;
    const int B = 2, T = 37, H = 3, Dqk = 24, Dv = 16;
    size_t nqk = (size_t)B * T * H * Dqk, nv = (size_t)B * T * H * Dv, natt = (size_t)B * H * T * T;
    float scale = 1.0f / sqrtf((float)Dqk);
    float *q = tensor(nqk, 1.0f, 50), *k = tensor(nqk, 1.0f, 51), *v = tensor(nv, 1.0f, 52);
    float *dout = tensor(nv, 1.0f, 53);
    float *out = zeros(nv), *out_ref = zeros(nv), *att = tensor(natt, 1.0f, 0), *att_ref = zeros(natt);
    attention_forward(out, att, q, k, v, B, T, H, Dqk, Dv, scale);
    attention_forward_ref(out_ref, att_ref, q, k, v, B, T, H, Dqk, Dv, scale);
    assert_true(tu_rel_err(out, out_ref, nv) <= FAST_TOL);
    assert_true(tu_rel_err(att, att_ref, natt) <= FAST_TOL);
    for (int bh = 0; bh < B * H; bh++)
        for (int t = 0; t < T; t++)
            for (int s = t + 1; s < T; s++) assert_true(att[((size_t)bh * T + t) * T + s] == 0.0f);

    float *dq = tensor(nqk, 1.0f, 54), *dq_ref = tensor(nqk, 1.0f, 54);
    float *dk = tensor(nqk, 1.0f, 55), *dk_ref = tensor(nqk, 1.0f, 55);
    float *dv = tensor(nv, 1.0f, 56), *dv_ref = tensor(nv, 1.0f, 56);
    float *scratch = zeros((size_t)ts_num_threads() * T * T);
    attention_backward(dq, dk, dv, scratch, dout, att, q, k, v, B, T, H, Dqk, Dv, scale);
    attention_backward_ref(dq_ref, dk_ref, dv_ref, scratch, dout, att, q, k, v, B, T, H, Dqk, Dv, scale);
    assert_true(tu_rel_err(dq, dq_ref, nqk) <= FAST_TOL);
    assert_true(tu_rel_err(dk, dk_ref, nqk) <= FAST_TOL);
    assert_true(tu_rel_err(dv, dv_ref, nv) <= FAST_TOL);
    free(q); free(k); free(v); free(dout); free(out); free(out_ref); free(att); free(att_ref);
    free(dq); free(dq_ref); free(dk); free(dk_ref); free(dv); free(dv_ref); free(scratch);
}

/* ------------------------------------------------------------------ */
/* Cross-entropy's ignore mask                                         */
/* ------------------------------------------------------------------ */

static void crossentropy_ignored_rows_get_exactly_zero(void **state) {
    (void)state;
    const int N = 6, V = 11;
    const int targets[6] = {TS_IGNORE, 4, TS_IGNORE, TS_IGNORE, 10, 0};
    float *logits = tensor((size_t)N * V, 5.0f, 60), *losses = tensor(N, 1.0f, 61);
    float *dlogits = zeros((size_t)N * V);
    int counted = crossentropy_forward(losses, logits, targets, N, V);
    assert_int_equal(counted, 3);
    float dloss[6];
    for (int n = 0; n < N; n++) dloss[n] = 1.0f / (float)counted;
    crossentropy_backward(dlogits, dloss, logits, targets, N, V);
    for (int n = 0; n < N; n++) {
        float row_abs = 0.0f;
        for (int v = 0; v < V; v++) row_abs += fabsf(dlogits[n * V + v]);
        if (targets[n] == TS_IGNORE) {
            assert_true(losses[n] == 0.0f);
            assert_true(row_abs == 0.0f); /* exactly: no rounding residue */
        } else {
            assert_true(losses[n] > 0.0f);
            assert_true(row_abs > 0.0f);
            /* −log p_y from the definition, in double */
            double mx = -INFINITY, sum = 0.0;
            for (int v = 0; v < V; v++) mx = fmax(mx, logits[n * V + v]);
            for (int v = 0; v < V; v++) sum += exp(logits[n * V + v] - mx);
            double expect = mx + log(sum) - logits[n * V + targets[n]];
            assert_true(fabs(losses[n] - expect) <= 1e-5 * fmax(1.0, expect));
        }
    }
    free(logits); free(losses); free(dlogits);
}

/* ------------------------------------------------------------------ */
/* RoPE and YaRN                                                       */
/* ------------------------------------------------------------------ */

static double dot_d(const float *a, const float *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void rope_rotates_by_relative_position(void **state) {
    (void)state;
    enum { DIM = 16, MAXPOS = 64 };
    float inv_freq[DIM / 2], cos_t[MAXPOS * DIM / 2], sin_t[MAXPOS * DIM / 2];
    rope_inv_freq(inv_freq, DIM, 10000.0f, NULL);
    for (int i = 0; i < DIM / 2; i++) /* θ_i = base^(−2i/dim) */
        assert_true(inv_freq[i] == (float)pow(10000.0, -2.0 * i / DIM));
    rope_table(cos_t, sin_t, inv_freq, DIM, MAXPOS);
    float q[DIM], k[DIM];
    tu_fill(q, DIM, 1.0f, 70);
    tu_fill(k, DIM, 1.0f, 71);

    /* each pair keeps its length */
    float x[DIM];
    memcpy(x, q, sizeof x);
    int p37 = 37;
    rope_forward(x, &p37, 1, 1, DIM, DIM, DIM, cos_t, sin_t);
    for (int i = 0; i < DIM / 2; i++) {
        double before = hypot(q[2 * i], q[2 * i + 1]), after = hypot(x[2 * i], x[2 * i + 1]);
        assert_true(fabs(after - before) <= 1e-6 * before);
    }
    /* the backward is the inverse rotation */
    rope_backward(x, &p37, 1, 1, DIM, DIM, DIM, cos_t, sin_t);
    assert_true(tu_rel_err(x, q, DIM) <= 1e-6);

    /* q(m)·k(n) depends only on m − n */
    const int pairs[4][2] = {{5, 2}, {10, 7}, {3, 0}, {63, 60}};
    double ref = 0.0;
    for (int j = 0; j < 4; j++) {
        float qm[DIM], kn[DIM];
        memcpy(qm, q, sizeof qm);
        memcpy(kn, k, sizeof kn);
        rope_forward(qm, &pairs[j][0], 1, 1, DIM, DIM, DIM, cos_t, sin_t);
        rope_forward(kn, &pairs[j][1], 1, 1, DIM, DIM, DIM, cos_t, sin_t);
        double d = dot_d(qm, kn, DIM);
        if (j == 0) ref = d;
        assert_true(fabs(d - ref) <= 1e-5 * fabs(ref));
    }
    /* and it does depend on it */
    float qm[DIM], kn[DIM];
    memcpy(qm, q, sizeof qm);
    memcpy(kn, k, sizeof kn);
    int m = 6, n = 2;
    rope_forward(qm, &m, 1, 1, DIM, DIM, DIM, cos_t, sin_t);
    rope_forward(kn, &n, 1, 1, DIM, DIM, DIM, cos_t, sin_t);
    assert_true(fabs(dot_d(qm, kn, DIM) - ref) > 1e-3);
}

static void yarn_frequencies_follow_the_ramp(void **state) {
    (void)state;
    enum { DIM = 64 };
    const double base = 10000.0;
    float plain[DIM / 2], yarn1[DIM / 2], yarn40[DIM / 2];
    rope_inv_freq(plain, DIM, (float)base, NULL);
    /* factor 1: YaRN is off */
    ts_yarn y = {.factor = 1.0f, .original_max_position = 4096, .beta_fast = 32.0f,
                 .beta_slow = 1.0f, .mscale = 1.0f, .mscale_all_dim = 0.0f};
    rope_inv_freq(yarn1, DIM, (float)base, &y);
    assert_memory_equal(plain, yarn1, sizeof plain);

    /* DeepSeek-V3's settings: factor 40 over an original 4096 positions.
     * Pair i turns 4096·θ_i/(2π) times over 4096 positions. It turns 32 times
     * (beta_fast) at i = 64·ln(4096/(2π·32))/(2·ln 10000) = 10.47, and once
     * (beta_slow) at i = 64·ln(4096/(2π))/(2·ln 10000) = 22.52: low = 10, high = 23. */
    y.factor = 40.0f;
    rope_inv_freq(yarn40, DIM, (float)base, &y);
    const int low = 10, high = 23;
    assert_int_equal((int)floor(DIM * log(4096 / (2 * TS_PI * 32)) / (2 * log(base))), low);
    assert_int_equal((int)ceil(DIM * log(4096 / (2 * TS_PI * 1)) / (2 * log(base))), high);
    for (int i = 0; i < DIM / 2; i++) {
        double theta = pow(base, -2.0 * i / DIM);
        if (i <= low) {
            assert_true(yarn40[i] == plain[i]); /* high frequency: kept */
        } else if (i >= high) {
            assert_true(fabs(yarn40[i] - theta / 40.0) <= 1e-6 * theta / 40.0); /* slowed down */
        } else {
            double t = (double)(i - low) / (high - low); /* share of the interpolated frequency */
            double expect = (1.0 - t) * theta + t * theta / 40.0;
            assert_true(fabs(yarn40[i] - expect) <= 1e-6 * expect);
            assert_true(yarn40[i] < plain[i] && yarn40[i] > theta / 40.0);
        }
    }
    /* the softmax temperature: 0.1·mscale·ln(factor) + 1, and 1 without extension */
    assert_true(fabsf(yarn_get_mscale(40.0f, 1.0f) - (float)(0.1 * log(40.0) + 1.0)) <= 1e-6f);
    assert_true(fabsf(yarn_get_mscale(40.0f, 0.707f) - (float)(0.1 * 0.707 * log(40.0) + 1.0)) <= 1e-6f);
    assert_true(yarn_get_mscale(1.0f, 1.0f) == 1.0f);
    assert_true(yarn_get_mscale(0.5f, 1.0f) == 1.0f);
}

/* ------------------------------------------------------------------ */
/* Determinism: same thread count, same bits                           */
/* ------------------------------------------------------------------ */

typedef struct {
    float *out, *dinp, *dw, *db;       /* matmul */
    float *aout, *att, *dq, *dk, *dv;  /* attention */
} run_result;

enum { DN = 130, DC = 260, DOC = 70, DB = 2, DT = 64, DH = 4, DD = 32 };

static run_result run_once(int threads) {
    ts_set_num_threads(threads);
    run_result r;
    float *inp = tensor((size_t)DN * DC, 1.0f, 80), *weight = tensor((size_t)DOC * DC, 1.0f, 81);
    float *bias = tensor(DOC, 1.0f, 82), *dout = tensor((size_t)DN * DOC, 1.0f, 83);
    r.out = zeros((size_t)DN * DOC);
    r.dinp = zeros((size_t)DN * DC);
    r.dw = zeros((size_t)DOC * DC);
    r.db = zeros(DOC);
    matmul_forward(r.out, inp, weight, bias, DN, DC, DOC);
    matmul_backward(r.dinp, r.dw, r.db, dout, inp, weight, DN, DC, DOC);

    size_t n = (size_t)DB * DT * DH * DD;
    float *q = tensor(n, 1.0f, 84), *k = tensor(n, 1.0f, 85), *v = tensor(n, 1.0f, 86);
    float *aout_grad = tensor(n, 1.0f, 87);
    float *scratch = zeros((size_t)ts_num_threads() * DT * DT);
    r.aout = zeros(n);
    r.att = zeros((size_t)DB * DH * DT * DT);
    r.dq = zeros(n);
    r.dk = zeros(n);
    r.dv = zeros(n);
    attention_forward(r.aout, r.att, q, k, v, DB, DT, DH, DD, DD, 0.17f);
    attention_backward(r.dq, r.dk, r.dv, scratch, aout_grad, r.att, q, k, v, DB, DT, DH, DD, DD, 0.17f);
    free(inp); free(weight); free(bias); free(dout); free(q); free(k); free(v); free(aout_grad); free(scratch);
    return r;
}

static void run_free(run_result *r) {
    free(r->out); free(r->dinp); free(r->dw); free(r->db);
    free(r->aout); free(r->att); free(r->dq); free(r->dk); free(r->dv);
}

static void same_bits(const run_result *a, const run_result *b) {
    size_t n = (size_t)DB * DT * DH * DD;
    assert_memory_equal(a->out, b->out, (size_t)DN * DOC * sizeof(float));
    assert_memory_equal(a->dinp, b->dinp, (size_t)DN * DC * sizeof(float));
    assert_memory_equal(a->dw, b->dw, (size_t)DOC * DC * sizeof(float));
    assert_memory_equal(a->db, b->db, DOC * sizeof(float));
    assert_memory_equal(a->aout, b->aout, n * sizeof(float));
    assert_memory_equal(a->att, b->att, (size_t)DB * DH * DT * DT * sizeof(float));
    assert_memory_equal(a->dq, b->dq, n * sizeof(float));
    assert_memory_equal(a->dk, b->dk, n * sizeof(float));
    assert_memory_equal(a->dv, b->dv, n * sizeof(float));
}

static void same_thread_count_gives_same_bits(void **state) {
    (void)state;
    int saved = ts_num_threads();
    run_result one = run_once(1), again = run_once(1);
    same_bits(&one, &again);
    run_free(&again);
    run_result two = run_once(2), two_again = run_once(2);
    same_bits(&two, &two_again);
    /* The C loops compute every output whole on one thread, in a fixed order,
     * so there even 1 and 2 threads agree (OpenBLAS promises no such thing). */
    if (ts_sgemm_uses_c_loops()) same_bits(&one, &two);
    run_free(&one);
    run_free(&two);
    run_free(&two_again);
    ts_set_num_threads(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradcheck_matmul),
        cmocka_unit_test(gradcheck_embedding),
        cmocka_unit_test(gradcheck_rmsnorm_strided),
        cmocka_unit_test(gradcheck_rope),
        cmocka_unit_test(gradcheck_softmax),
        cmocka_unit_test(gradcheck_attention),
        cmocka_unit_test(gradcheck_swiglu),
        cmocka_unit_test(gradcheck_crossentropy),
        cmocka_unit_test(gradcheck_catches_a_wrong_gradient),
        cmocka_unit_test(matmul_fast_matches_ref),
        cmocka_unit_test(sgemm_fast_matches_ref),
        cmocka_unit_test(attention_fast_matches_ref),
        cmocka_unit_test(crossentropy_ignored_rows_get_exactly_zero),
        cmocka_unit_test(rope_rotates_by_relative_position),
        cmocka_unit_test(yarn_frequencies_follow_the_ramp),
        cmocka_unit_test(same_thread_count_gives_same_bits),
    };
    return cmocka_run_group_tests_name("ch02_ops", tests, NULL, NULL);
}

/* Appendix C, run under mpirun at 1, 2 and 4 ranks (make test-mpi):
 *  - the tree sum over ranks is the one-process tree over the same leaves, bit for bit;
 *  - data parallel: N ranks train the same bits as one process on the whole batch (the same
 *    shards, the same tree), with targets masked unevenly across shards (the normaliser Z is
 *    the whole batch's) and MoE bias balancing (the loads are the whole batch's);
 *  - one shard on one process is chapter 2's pretraining, bit for bit;
 *  - expert parallel: the logits, the input gradients and each owned expert's weight gradients
 *    of one process running the whole batch, bit for bit; the replicated weights' gradients
 *    (sums over tokens the ranks split) equal it up to float rounding.
 * Every rank runs every test (each is a collective); rank 0 computes the one-process
 * reference on MPI_COMM_SELF and the verdict is shared, so all ranks pass or fail together. */
#include "testutil.h"

#include "dist/dist.h"
#include "dist/dp.h"
#include "dist/ep.h"
#include "model/model.h"
#include "train/loss.h"
#include "train/pretrain.h"

static int g_rank, g_size;

/* Every rank asserts rank 0's verdict (so a failure never leaves a rank waiting in a collective). */
static void agree(int ok_on_root, const char *what) {
    int ok = ok_on_root;
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!ok && g_rank == 0) fprintf(stderr, "  (%d ranks) %s\n", g_size, what);
    assert_true(ok);
}

static ts_config tiny(int E, int K, int groups, int topk_group, float alpha, int layers) {
    ts_config c;
    ts_config_default(&c);
    c.vocab_size = 13;
    c.hidden_size = 8;
    c.num_hidden_layers = layers;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.head_dim = 4;
    c.intermediate_size = 12;
    c.max_position_embeddings = 32;
    c.initializer_range = 0.4f;
    c.n_routed_experts = E;
    c.num_experts_per_tok = K;
    c.n_shared_experts = 1;
    c.moe_intermediate_size = 6;
    c.first_k_dense_replace = 1;
    c.n_group = groups;
    c.topk_group = topk_group;
    strcpy(c.scoring_func, "sigmoid");
    c.norm_topk_prob = 1;
    c.routed_scaling_factor = 2.5f;
    c.aux_loss_alpha = alpha;
    return c;
}

/* ---- the tree ------------------------------------------------------------ */

static void test_tree_sum(void **state) {
    (void)state;
    enum { S = 8, n = 257 };
    if (S % g_size) skip();
    ts_dist d;
    assert_int_equal(ts_dist_init(&d, MPI_COMM_WORLD, 1), TS_OK);
    // leaf s: values of very different sizes, so that the order of the additions shows in the bits
    float all[S][n], *leaf[S], x[n], tmp[n];
    for (int s = 0; s < S; s++) {
        tu_fill(all[s], n, 1.0f, 100 + s);
        for (int i = 0; i < n; i++) all[s][i] *= powf(10.0f, (float)((s * 3 + i) % 9) - 4);
        leaf[s] = all[s];
    }
    int L = S / g_size;
    float mine[S][n], *mp[S];
    for (int j = 0; j < L; j++) {
        memcpy(mine[j], all[g_rank * L + j], sizeof mine[j]);
        mp[j] = mine[j];
    }
    ts_tree_sum_local(mp, L, n);
    memcpy(x, mine[0], sizeof x);
    ts_dist_tree_sum(&d, x, tmp, n, TS_COLL_GRAD);
    int ok = 1, differs = 0;
    if (g_rank == 0) {
        float seq[n];
        memset(seq, 0, sizeof seq);
        for (int s = 0; s < S; s++)
            for (int i = 0; i < n; i++) seq[i] += all[s][i];
        ts_tree_sum_local(leaf, S, n); // all[0] = the one-process tree
        ok = memcmp(x, all[0], sizeof x) == 0;
        differs = memcmp(seq, all[0], sizeof seq) != 0; // the test can see an order change
    }
    agree(ok, "tree sum over ranks differs from the one-process tree");
    agree(g_rank != 0 || differs, "left-to-right sum equals the tree: the data cannot tell orders apart");
    // every rank holds the same bits
    float first[n];
    memcpy(first, x, sizeof x);
    MPI_Bcast(first, n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    int same = memcmp(first, x, sizeof x) == 0, all_same = 0;
    MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    assert_true(all_same);
}

/* ---- data parallel -------------------------------------------------------- */

enum { STREAM = 3000 };
static int g_tokens[STREAM];

static void make_stream(int V) {
    ts_rng r;
    ts_rng_seed(&r, 7, TS_STREAM_TEST);
    for (int i = 0; i < STREAM; i++) g_tokens[i] = (int)ts_rng_below(&r, (uint64_t)V);
}

/* Windows whose targets are masked unevenly: the first rows lose most of theirs, so the shards count
 * different numbers of tokens (as SFT's prompts do) and only the whole batch's Z gives the right mean. */
typedef struct {
    ts_batch_source inner;
} masked_src;

static ts_status masked_next(ts_batch_source *src, ts_batch *out) {
    masked_src *m = src->ctx;
    ts_status st = m->inner.next(&m->inner, out);
    for (int b = 0; b < out->B && !st; b++)
        for (int t = 0; t < out->T; t++)
            if ((b < out->B / 4 && t % 4 != 0) || (b == out->B - 1 && t % 2)) out->targets[b * out->T + t] = TS_IGNORE;
    return st;
}

/* steps of data-parallel training of a fresh model over @p comm; leaves the model for inspection */
static void dp_train(ts_model *m, MPI_Comm comm, const ts_config *c, int shards, int B, int T, int steps, int masked) {
    ts_dist d;
    assert_int_equal(ts_dist_init(&d, comm, 1), TS_OK);
    assert_int_equal(ts_model_create(m, c, TS_MODEL_TRAIN), TS_OK);
    ts_model_init_weights(m, 3);
    ts_token_stream s = {g_tokens, STREAM};
    masked_src ms;
    ts_batch_source src;
    assert_int_equal(ts_windows_source(&ms.inner, &s, B, T, 11), TS_OK);
    src = ms.inner;
    if (masked) {
        src.next = masked_next;
        src.ctx = &ms;
    }
    ts_train_opts o = ts_train_opts_default();
    o.batch_size = B;
    o.seq_len = T;
    o.steps = steps;
    o.warmup = 1;
    o.quiet = 1;
    o.eval_every = 0;
    o.bias_update_speed = c->n_routed_experts ? 0.01f : 0.0f;
    ts_dp dp;
    assert_int_equal(ts_dp_init(&dp, &d, m, shards, B), TS_OK);
    ts_trainer t = {.label = "dp-test", .data = &src, .fingerprint = 1};
    ts_dp_trainer(&dp, &t);
    ts_train_result res;
    assert_int_equal(ts_train(m, &t, &o, &res), TS_OK);
    ts_dp_free(&dp);
}

static int same_state(const ts_model *a, const ts_model *b) {
    size_t n = a->params.numel * sizeof(float);
    return a->params.numel == b->params.numel && !memcmp(a->params.data, b->params.data, n) &&
           !memcmp(a->params.m, b->params.m, n) && !memcmp(a->params.v, b->params.v, n);
}

static void check_dp(const ts_config *c, int masked) {
    enum { S = 4, B = 8, T = 8, STEPS = 3 };
    if (S % g_size) skip();
    make_stream(c->vocab_size);
    ts_model par;
    dp_train(&par, MPI_COMM_WORLD, c, S, B, T, STEPS, masked);
    int ok = 1, moved = 1;
    if (g_rank == 0) {
        ts_model one, start;
        dp_train(&one, MPI_COMM_SELF, c, S, B, T, STEPS, masked); // one process, the whole batch, the same shards
        ok = same_state(&par, &one);
        assert_int_equal(ts_model_create(&start, c, TS_MODEL_TRAIN), TS_OK);
        ts_model_init_weights(&start, 3);
        moved = memcmp(start.params.data, par.params.data, par.params.numel * sizeof(float)) != 0;
        ts_model_free(&one);
        ts_model_free(&start);
    }
    agree(moved, "training did not change the weights");
    agree(ok, "data-parallel weights or AdamW moments differ from one process on the whole batch");
    // and every rank ends with the same weights
    size_t n = par.params.numel;
    float *w0 = malloc(n * sizeof(float));
    memcpy(w0, par.params.data, n * sizeof(float));
    MPI_Bcast(w0, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    int same = !memcmp(w0, par.params.data, n * sizeof(float)), all = 0;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    free(w0);
    ts_model_free(&par);
    assert_true(all);
}

static void test_dp_dense(void **state) {
    (void)state;
    ts_config c = tiny(0, 0, 1, 1, 0.0f, 2);
    check_dp(&c, 1);
}

static void test_dp_moe(void **state) {
    (void)state;
    ts_config c = tiny(8, 2, 4, 2, 0.05f, 3); // two MoE layers, group-limited routing, balance loss and bias update
    check_dp(&c, 1);
}

/* S = 1 on one process is chapter 2's step: ts_pretrain's bits. */
static void test_one_shard_is_pretraining(void **state) {
    (void)state;
    enum { B = 4, T = 8, STEPS = 3 };
    ts_config c = tiny(8, 2, 4, 2, 0.05f, 3);
    make_stream(c.vocab_size);
    int ok = 1;
    if (g_rank == 0) {
        ts_model dp, plain;
        dp_train(&dp, MPI_COMM_SELF, &c, 1, B, T, STEPS, 0);
        assert_int_equal(ts_model_create(&plain, &c, TS_MODEL_TRAIN), TS_OK);
        ts_model_init_weights(&plain, 3);
        ts_train_opts o = ts_train_opts_default();
        o.batch_size = B;
        o.seq_len = T;
        o.steps = STEPS;
        o.warmup = 1;
        o.quiet = 1;
        o.eval_every = 0;
        o.seed = 11;
        o.bias_update_speed = 0.01f;
        ts_token_stream s = {g_tokens, STREAM};
        ts_train_result res;
        assert_int_equal(ts_pretrain(&plain, &s, NULL, &o, &res), TS_OK);
        ok = same_state(&dp, &plain);
        ts_model_free(&dp);
        ts_model_free(&plain);
    }
    agree(ok, "one shard on one process differs from ts_pretrain");
}

/* ---- expert parallel ------------------------------------------------------------ */

/* forward + cross-entropy over Z + backward of @p m on rows (Bl, T) of tokens/targets (grads zeroed first) */
static void fwd_bwd(ts_model *m, const int *tok, const int *tgt, int Bl, int T, double Z, float aux_weight) {
    int N = Bl * T, V = m->cfg.vocab_size;
    ts_model_zero_grad(m);
    assert_int_equal(ts_model_forward_logits(m, tok, Bl, T), TS_OK);
    memset(m->d_logits, 0, (size_t)N * V * sizeof(float));
    ts_ce_result ce;
    assert_int_equal(ts_loss_crossentropy(&ce, m->d_logits, NULL, m->logits, tgt, NULL, Z, N, V), TS_OK);
    assert_int_equal(ts_model_backward_from(m, m->d_logits, NULL, aux_weight), TS_OK);
}

/* 1 if parameter @p name is a routed expert's */
static int is_expert(const char *name) { return strstr(name, ".mlp.experts.") != NULL; }

static void check_ep(const ts_config *c, int ranks_per_node) {
    enum { BL = 2, T = 8 };
    if (c->n_routed_experts % g_size || g_size % ranks_per_node) skip();
    int N = g_size, B = BL * N, V = c->vocab_size;
    make_stream(V);
    int *tok = malloc(sizeof(int) * B * T), *tgt = malloc(sizeof(int) * B * T);
    for (int i = 0; i < B * T; i++) {
        tok[i] = g_tokens[i];
        tgt[i] = g_tokens[i + 1];
    }
    ts_dist d;
    assert_int_equal(ts_dist_init(&d, MPI_COMM_WORLD, ranks_per_node), TS_OK);
    ts_model m;
    assert_int_equal(ts_model_create(&m, c, TS_MODEL_GRADS), TS_OK);
    ts_model_init_weights(&m, 5);
    ts_ep ep;
    assert_int_equal(ts_ep_init(&ep, &d, &m), TS_OK);
    size_t rows = (size_t)BL * T, off = (size_t)g_rank * rows, numel = m.params.numel;
    fwd_bwd(&m, tok + off, tgt + off, BL, T, (double)B * T, (float)BL / (float)B);
    float *logits = malloc(sizeof(float) * B * T * V), *tmp = malloc(numel * sizeof(float));
    MPI_Gather(m.logits, (int)(rows * V), MPI_FLOAT, logits, (int)(rows * V), MPI_FLOAT, 0, MPI_COMM_WORLD);
    // each rank's input gradient of the first block, where the MoE layers' dx has arrived (embedding grads: per row)
    float *dres = malloc(sizeof(float) * B * T * c->hidden_size);
    MPI_Gather(m.d_res, (int)(rows * c->hidden_size), MPI_FLOAT, dres, (int)(rows * c->hidden_size), MPI_FLOAT, 0,
               MPI_COMM_WORLD);
    ts_dist_tree_sum(&d, m.params.grad, tmp, numel, TS_COLL_GRAD); // what data parallelism adds
    int ok_logits = 1, ok_dx = 1, ok_expert = 1, crossed = 1;
    double rel_whole = 0;
    if (g_rank == 0) {
        ts_model ref;
        assert_int_equal(ts_model_create(&ref, c, TS_MODEL_GRADS), TS_OK);
        ts_model_init_weights(&ref, 5);
        // one process, the whole batch: logits, input gradients and the experts' weight gradients
        fwd_bwd(&ref, tok, tgt, B, T, 0, 1.0f);
        ok_logits = !memcmp(ref.logits, logits, sizeof(float) * B * T * V);
        ok_dx = !memcmp(ref.d_res, dres, sizeof(float) * B * T * c->hidden_size);
        // replicated weights: each rank summed its own tokens' share, the tree added the shares; one process
        // summed all tokens in one product. Same terms, other order: equal up to float rounding (measured and
        // printed; the bound 1e-5 is a few ulps times the 48 tokens a product adds, far below any real error)
        for (int i = 0; i < ref.params.count; i++) {
            const ts_param *p = &ref.params.params[i];
            const float *got = m.params.grad + p->offset, *want = ref.params.grad + p->offset;
            if (is_expert(p->name)) {
                ok_expert &= !memcmp(got, want, p->numel * sizeof(float));
            } else {
                double r = tu_rel_err(got, want, p->numel);
                if (r > rel_whole) rel_whole = r;
            }
        }
        printf("  (%d ranks) replicated gradients vs one backward over the whole batch: %.2g relative (rounding)\n", N,
               rel_whole);
        ts_model_free(&ref);
    }
    // the test must have moved rows between ranks (with 1 rank there is nothing to move)
    if (N > 1) {
        ts_dist_ledger tot;
        ts_dist_ledger_sum(&d, &tot);
        crossed = tot.bytes[TS_COLL_EP_DISPATCH] > 0 && tot.bytes[TS_COLL_EP_COMBINE_B] > 0;
    }
    agree(crossed, "no rows crossed ranks");
    agree(ok_logits, "expert-parallel logits differ from one process on the whole batch");
    agree(ok_dx, "expert-parallel input gradients differ from one process on the whole batch");
    agree(ok_expert, "an expert's weight gradient differs from one process on the whole batch");
    agree(rel_whole < 1e-5, "replicated gradients far from the whole batch's (more than rounding)");
    ts_ep_free(&ep, &m);
    ts_model_free(&m);
    free(tok);
    free(tgt);
    free(logits);
    free(dres);
    free(tmp);
}

static void test_ep_moe(void **state) {
    (void)state;
    ts_config c = tiny(8, 3, 1, 1, 0.0f, 3); // two MoE layers, plain top-3
    check_ep(&c, 1);
}

static void test_ep_node_limited(void **state) {
    (void)state;
    // node-limited: 2 nodes as 2 groups of experts, each token to at most 1 node
    if (g_size % 2) skip();
    ts_config c = tiny(8, 3, 2, 1, 0.0f, 3);
    check_ep(&c, g_size / 2);
}

static void test_ep_routing_ledger(void **state) {
    (void)state;
    // with topk_group = 1 of 2 nodes no token may reach more than one node
    enum { BL = 3, T = 8 };
    if (g_size % 2 || 8 % g_size) skip();
    ts_config c = tiny(8, 3, 2, 1, 0.0f, 2);
    make_stream(c.vocab_size);
    ts_dist d;
    assert_int_equal(ts_dist_init(&d, MPI_COMM_WORLD, g_size / 2), TS_OK);
    ts_model m;
    assert_int_equal(ts_model_create(&m, &c, TS_MODEL_GRADS), TS_OK);
    ts_model_init_weights(&m, 9);
    ts_ep ep;
    assert_int_equal(ts_ep_init(&ep, &d, &m), TS_OK);
    assert_int_equal(ts_model_forward_logits(&m, g_tokens + g_rank * BL * T, BL, T), TS_OK);
    int most = 0;
    MPI_Allreduce(&ep.routing.max_remote_nodes, &most, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    double pairs = 0, mine = ep.routing.pairs;
    MPI_Allreduce(&mine, &pairs, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    assert_true(most <= 1);
    assert_true(pairs == (double)g_size * BL * T * 3);
    ts_ep_free(&ep, &m);
    ts_model_free(&m);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    ts_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_sum),
        cmocka_unit_test(test_dp_dense),
        cmocka_unit_test(test_dp_moe),
        cmocka_unit_test(test_one_shard_is_pretraining),
        cmocka_unit_test(test_ep_moe),
        cmocka_unit_test(test_ep_node_limited),
        cmocka_unit_test(test_ep_routing_ledger),
    };
    if (g_rank != 0) { // one report: rank 0's (the verdicts are shared)
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) return 1;
    }
    int failed = cmocka_run_group_tests_name(g_size == 1 ? "dist (1 rank)" : g_size == 2 ? "dist (2 ranks)" : "dist (N ranks)",
                                             tests, NULL, NULL);
    MPI_Finalize();
    return failed ? 1 : 0;
}

/**
 * @file dp.c
 * @brief Data parallelism: shards of the batch, one fixed-order gradient sum (see dp.h).
 */
#include "dist/dp.h"

#include <stdlib.h>
#include <string.h>

#include "train/loss.h"

ts_status ts_dp_init(ts_dp *dp, ts_dist *d, const ts_model *m, int shards, int batch_size) {
    memset(dp, 0, sizeof *dp);
    int N = d->size;
    if (shards < 1 || shards % N != 0)
        return ts_fail(TS_ERR_ARG, "data parallel: %d shards over %d ranks: the ranks must divide the shards", shards, N);
    int local = shards / N;
    if (local & (local - 1))
        return ts_fail(TS_ERR_ARG, "data parallel: %d shards per rank: expected a power of two (the sum's tree)", local);
    if (batch_size % shards != 0)
        return ts_fail(TS_ERR_ARG, "data parallel: batch %d is not a multiple of the %d shards", batch_size, shards);
    if (m->cfg.num_nextn_predict_layers > 0)
        return ts_fail(TS_ERR_ARG, "data parallel: multi-token prediction (num_nextn_predict_layers %d) is not supported",
                       m->cfg.num_nextn_predict_layers);
    dp->dist = d;
    dp->shards = shards;
    dp->local = local;
    dp->numel = m->params.numel;
    dp->n_moe = ts_model_moe_layers(m);
    size_t E = (size_t)m->cfg.n_routed_experts;
    dp->tmp = ts_malloc(dp->numel * sizeof(float), "data-parallel receive buffer");
    dp->parts = ts_calloc((size_t)shards, sizeof(double), "data-parallel loss parts");
    dp->loads = ts_calloc((size_t)(dp->n_moe ? dp->n_moe : 1) * (E ? E : 1), sizeof(int), "data-parallel loads");
    if (!dp->tmp || !dp->parts || !dp->loads) {
        ts_dp_free(dp);
        return TS_ERR_NOMEM;
    }
    if (local > 1) {
        dp->leaves = ts_calloc((size_t)local, sizeof(float *), "shard gradients");
        for (int j = 0; dp->leaves && j < local; j++)
            if (!(dp->leaves[j] = ts_malloc(dp->numel * sizeof(float), "a shard's gradient"))) break;
        if (!dp->leaves || !dp->leaves[local - 1]) {
            ts_dp_free(dp);
            return TS_ERR_NOMEM;
        }
    }
    return TS_OK;
}

void ts_dp_free(ts_dp *dp) {
    for (int j = 0; dp->leaves && j < dp->local; j++) free(dp->leaves[j]);
    free(dp->leaves);
    free(dp->tmp);
    free(dp->parts);
    free(dp->loads);
    memset(dp, 0, sizeof *dp);
}

/* this rank's MoE layers' loads += the last forward's */
static void add_loads(ts_dp *dp, const ts_model *m) {
    int E = m->cfg.n_routed_experts;
    for (int l = 0, j = 0; l < m->cfg.num_hidden_layers; l++)
        if (ts_moe_is_layer(&m->cfg, l)) {
            for (int e = 0; e < E; e++) dp->loads[(size_t)j * E + e] += m->acts[l].moe.counts[e];
            j++;
        }
}

//! [dp-step]
/* This rank's shards: forward, cross-entropy over the whole batch's Z, backward, one gradient per shard,
 * summed in the tree's lower levels. The loop zeroed the gradients. */
static ts_status dp_step(void *ctx, ts_model *m, const ts_batch *b, float *loss, double *stats) {
    ts_dp *dp = ctx;
    ts_dist *d = dp->dist;
    int Bs = b->B / dp->shards, T = b->T, Ns = Bs * T, V = m->cfg.vocab_size;
    int first = d->rank * dp->local; // this rank's first shard
    // Z = targets counted in the whole batch: every rank counts its rows, the integers are summed exactly
    long long z_local = 0, Z = 0;
    for (size_t n = (size_t)first * Ns; n < (size_t)(first + dp->local) * Ns; n++) z_local += b->targets[n] != TS_IGNORE;
    double t0 = MPI_Wtime();
    MPI_Allreduce(&z_local, &Z, 1, MPI_LONG_LONG, MPI_SUM, d->comm);
    for (int q = 0; q < d->size; q++) ts_dist_count(d, TS_COLL_SCALAR, q, sizeof Z);
    d->ledger.seconds[TS_COLL_SCALAR] += MPI_Wtime() - t0;
    d->ledger.calls[TS_COLL_SCALAR]++;
    memset(dp->loads, 0, (size_t)dp->n_moe * m->cfg.n_routed_experts * sizeof(int));
    float aux_weight = (float)Bs / (float)b->B; // the balance loss is a mean over sequences: this shard's share
    for (int j = 0; j < dp->local; j++) {
        size_t row0 = (size_t)(first + j) * Ns;
        ts_status st = ts_model_forward_logits(m, b->tokens + row0, Bs, T);
        if (st) return st;
        memset(m->d_logits, 0, (size_t)Ns * V * sizeof(float));
        ts_ce_result ce = {0};
        if (Z > 0) {
            st = ts_loss_crossentropy(&ce, m->d_logits, NULL, m->logits, b->targets + row0,
                                      b->weights ? b->weights + row0 : NULL, (double)Z, Ns, V);
            if (st) return st;
        }
        dp->parts[first + j] = ce.loss + aux_weight * m->aux_loss; // Σ_shard ℓ/Z + its share of the balance loss
        if ((st = ts_model_backward_from(m, m->d_logits, NULL, aux_weight))) return st;
        add_loads(dp, m);
        if (dp->local > 1) { // keep the shard's gradient apart: the tree adds them, not the backward's +=
            memcpy(dp->leaves[j], m->params.grad, dp->numel * sizeof(float));
            memset(m->params.grad, 0, dp->numel * sizeof(float));
        }
    }
    if (dp->local > 1) {
        ts_tree_sum_local(dp->leaves, dp->local, dp->numel);
        memcpy(m->params.grad, dp->leaves[0], dp->numel * sizeof(float));
    }
    // the loss: every shard's part, added in shard order on every rank (the same number everywhere)
    t0 = MPI_Wtime();
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, dp->parts, dp->local, MPI_DOUBLE, d->comm);
    for (int q = 0; q < d->size; q++) ts_dist_count(d, TS_COLL_SCALAR, q, dp->local * sizeof(double));
    d->ledger.seconds[TS_COLL_SCALAR] += MPI_Wtime() - t0;
    d->ledger.calls[TS_COLL_SCALAR]++;
    double total = 0;
    for (int s = 0; s < dp->shards; s++) total += dp->parts[s];
    *loss = (float)total;
    return TS_OK;
}

/* After the backward: the gradient and the expert loads summed over the ranks. */
static ts_status dp_after_backward(void *ctx, ts_model *m, long step) {
    ts_dp *dp = ctx;
    ts_dist *d = dp->dist;
    ts_dist_tree_sum(d, m->params.grad, dp->tmp, dp->numel, TS_COLL_GRAD);
    if (dp->n_moe > 0) { // the bias update and the load log read the whole batch's loads
        int E = m->cfg.n_routed_experts, n = dp->n_moe * E;
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, dp->loads, n, MPI_INT, MPI_SUM, d->comm);
        for (int q = 0; q < d->size; q++) ts_dist_count(d, TS_COLL_SCALAR, q, (double)n * sizeof(int));
        d->ledger.seconds[TS_COLL_SCALAR] += MPI_Wtime() - t0;
        d->ledger.calls[TS_COLL_SCALAR]++;
        for (int l = 0, j = 0; l < m->cfg.num_hidden_layers; l++)
            if (ts_moe_is_layer(&m->cfg, l)) memcpy(m->acts[l].moe.counts, dp->loads + (size_t)j++ * E, E * sizeof(int));
    }
    return TS_OK;
}
//! [dp-step]

void ts_dp_trainer(ts_dp *dp, ts_trainer *t) {
    t->loss = (ts_loss){.step = dp_step, .ctx = dp};
    t->after_backward = dp_after_backward;
    t->after_backward_ctx = dp;
}

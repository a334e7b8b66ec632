/**
 * @file dp.h
 * @brief Appendix C: data parallelism. Every rank holds the whole model; each
 *        step's batch is cut into S shards of B/S sequences, each rank
 *        computes the gradient of S/N of them, and the gradients are summed
 *        over the ranks after the backward (the training loop's after_backward
 *        hook), so every rank takes the same optimizer step.
 *
 * The gradient of a batch is a sum over its tokens,
 *
 *     ∇L = (1/Z) Σ_{tokens n} ∇ℓ_n = Σ_{shards s} [ (1/Z) Σ_{n in s} ∇ℓ_n ]    Z = tokens counted in the whole batch
 *
 * so each shard's gradient must be divided by the *whole batch's* token count
 * Z, not its own: a shard with fewer counted tokens (SFT masks prompts) would
 * otherwise weigh as much as a full one. Z is an integer, summed over the
 * ranks exactly (MPI_Allreduce of ints) before any shard's loss.
 *
 * The S shard gradients are added in one fixed binary tree (dist.h): a rank's
 * S/N shards are a subtree (S/N a power of two), summed locally, and the
 * ranks' subtrees are summed by ts_dist_tree_sum(). The tree does not depend
 * on N, so N = 1, 2, 4 ... ranks give the same bits, and N = 1 is one process
 * on the whole batch. S = 1 is chapter 2's step exactly (one forward and
 * backward over the whole batch); S > 1 adds the same gradient in another
 * order, equal to S = 1 up to float rounding only.
 *
 * What else must be summed over the ranks: the loss (for the log and the stop
 * on divergence: every rank must take the same decision) and, for MoE models,
 * the expert loads that the auxiliary-loss-free bias update reads (integers,
 * so exact). The MoE balance loss is per sequence, so each shard's part is
 * its sequences' share (weight B_shard/B).
 *
 * Each rank draws the whole batch from the same seeded source and keeps its
 * rows: cheap here, and it keeps the data order, and so the resume state,
 * one run's. Rank 0 alone writes checkpoints and logs.
 */
#ifndef TS_DP_H
#define TS_DP_H

#include "dist/dist.h"
#include "train/loop.h"

/** Data-parallel state of one rank. */
typedef struct {
    ts_dist *dist;       /**< the ranks */
    int shards;          /**< S shards per batch (fixed for a run, whatever N) */
    int local;           /**< S/N shards this rank computes */
    size_t numel;        /**< parameters */
    float **leaves;      /**< (local) gradient buffers of this rank's shards (NULL when local = 1) */
    float *tmp;          /**< (numel) receive buffer of the tree sum */
    int n_moe;           /**< MoE layers */
    int *loads;          /**< (n_moe·E) tokens per expert over this rank's shards, then over all ranks */
    double *parts;       /**< (S) each shard's share of the loss, in shard order */
} ts_dp;

/**
 * @brief Set up data parallelism for @p m (created with optimizer state) over
 * @p d with @p shards shards per batch of @p batch_size sequences: the ranks
 * must divide the shards, the shards the batch, and shards/ranks must be a
 * power of two. Models with multi-token prediction are refused (not built here).
 */
ts_status ts_dp_init(ts_dp *dp, ts_dist *d, const ts_model *m, int shards, int batch_size);

/** @brief Free what ts_dp_init() allocated. */
void ts_dp_free(ts_dp *dp);

/**
 * @brief Make @p t data parallel: its loss becomes next-token cross-entropy
 * (+ the MoE balance loss) over this rank's shards, its after_backward the
 * sum over the ranks. @p t's data, eval and the rest are left as they are.
 */
void ts_dp_trainer(ts_dp *dp, ts_trainer *t);

#endif

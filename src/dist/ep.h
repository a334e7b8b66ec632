/**
 * @file ep.h
 * @brief Appendix C: expert parallelism. The E routed experts of every MoE
 *        layer are split over the N ranks, E/N each (rank r owns experts
 *        r·E/N .. (r+1)·E/N − 1); everything else (attention, router, shared
 *        experts) is replicated and sees only the rank's own tokens.
 *
 * moe_forward() routes each token as always and gathers its K (token, expert)
 * rows grouped by expert; since a rank's experts are consecutive, the rows
 * for each rank are consecutive too. The layer then hands the expert step to
 * ts_ep (ts_moe_remote):
 *
 *     dispatch   MPI_Alltoall:  how many rows for each of your experts (E/N ints per rank pair)
 *                MPI_Alltoallv: the rows themselves (C floats each)
 *     experts    each owned expert runs on all the rows it received, from every rank,
 *                ordered by source rank: the very matrix one process would build
 *     combine    MPI_Alltoallv back: each output row to the rank its token lives on,
 *                where moe_forward() weighs and adds the K outputs as always
 *
 * The backward is the same two moves, transposed: the combine (a copy of
 * outputs back) has for its backward a dispatch of the output gradients, and
 * the dispatch (a copy of inputs out) has for its backward a combine of the
 * input gradients, which moe_backward() adds into each token's gradient.
 *
 * No sum is reordered, so the outputs, the input gradients and the owned
 * experts' weight gradients are the bits of one process running the whole
 * batch; the replicated weights' gradients are partial sums over each rank's
 * tokens, summed over the ranks as data parallelism does (dp.h).
 *
 * Node-limited routing (DeepSeek-V3 §2.1.2 / §3.2.2) is the config's
 * group-limited routing with one expert group per node: n_group = nodes and
 * topk_group = M lets each token reach at most M nodes. The ledger counts
 * the (token, expert) pairs and distinct nodes each token reaches.
 */
#ifndef TS_EP_H
#define TS_EP_H

#include "dist/dist.h"
#include "model/model.h"

/** Routing traffic seen by this rank's tokens (its share of the job's). */
typedef struct {
    double tokens;           /**< tokens routed (per MoE layer and forward) */
    double pairs;            /**< (token, expert) pairs: tokens·K */
    double pairs_offrank;    /**< pairs whose expert lives on another rank */
    double pairs_offnode;    /**< pairs whose expert lives on another node */
    double remote_nodes;     /**< Σ over tokens of the distinct other nodes its experts live on */
    double tokens_offnode;   /**< tokens with at least one expert on another node */
    int max_remote_nodes;    /**< the most other nodes one token reached */
} ts_ep_routing;

struct ep_layer;

/** Expert-parallel state of one rank. */
typedef struct {
    ts_dist *dist;           /**< the ranks */
    ts_moe_remote remote;    /**< what the MoE layers call (moe.h) */
    int E;                   /**< routed experts per layer */
    int local;               /**< experts per rank: E/N */
    int C;                   /**< hidden size */
    int Fe;                  /**< expert intermediate size */
    struct ep_layer *layers; /**< per MoE layer (keyed by its activations): what the backward needs */
    int n_layers;            /**< entries in use */
    int cap_layers;          /**< entries allocated */
    float *sendbuf;          /**< rows in source order, to send back */
    float *dbuf;             /**< (rows, C) the received output gradients, expert order */
    ts_mlp_acts d_mlp;       /**< an expert backward's intermediates */
    size_t cap_rows;         /**< rows the three buffers above hold */
    ts_ep_routing routing;   /**< traffic of this rank's tokens */
} ts_ep;

/**
 * @brief Split @p m's routed experts over the ranks of @p d: every MoE layer's
 * experts then run through @p ep (m->w.layers[l].moe.remote). E must be a
 * multiple of the rank count. Every rank must then run the same forwards and
 * backwards in the same order (each MoE layer is a collective).
 */
ts_status ts_ep_init(ts_ep *ep, ts_dist *d, ts_model *m);

/** @brief Undo ts_ep_init(): the experts run locally again; frees the buffers. */
void ts_ep_free(ts_ep *ep, ts_model *m);

/** @brief 1 if this rank owns routed expert @p e. */
int ts_ep_owns(const ts_ep *ep, int e);

#endif

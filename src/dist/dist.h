/**
 * @file dist.h
 * @brief Appendix C: the ranks of an MPI job, a gradient sum whose order is
 *        fixed, and a ledger of what every collective moved.
 *
 * Built only when MPI is installed (mk/dist.mk); nothing else in tinyseek
 * includes this folder. A job is N ranks (processes), numbered 0..N−1;
 * consecutive ranks are grouped into "nodes" of ranks_per_node ranks, to
 * stand for the machines of a cluster (on one machine every rank is a process
 * on the same CPU, and a node is only a label: which bytes *would* cross a
 * network).
 *
 * Why a sum of our own, when MPI_Allreduce exists: floating-point addition is
 * not associative, and MPI may add the N contributions in any order (Open MPI
 * picks its algorithm by message size and rank count). ts_dist_tree_sum()
 * always adds in the same binary tree, left operand the lower rank, so the
 * bits do not depend on the library, and do not depend on how many ranks share
 * the work either, when each rank's contribution is itself a subtree
 * (src/dist/dp.h).
 */
#ifndef TS_DIST_H
#define TS_DIST_H

#include <mpi.h>
#include <stddef.h>

#include "core/common.h"

/** What a collective was for: a row of the ledger. */
typedef enum {
    TS_COLL_GRAD = 0,      /**< data parallel: the gradient sum (tree reduce to rank 0, then broadcast) */
    TS_COLL_SCALAR,        /**< data parallel: token counts, expert loads, the loss (a few numbers) */
    TS_COLL_EP_COUNTS,     /**< expert parallel: MPI_Alltoall of rows per (rank, expert) */
    TS_COLL_EP_DISPATCH,   /**< expert parallel, forward: token rows to the experts' ranks (MPI_Alltoallv) */
    TS_COLL_EP_COMBINE,    /**< expert parallel, forward: expert outputs back to the tokens' ranks */
    TS_COLL_EP_DISPATCH_B, /**< expert parallel, backward of the combine: output gradients to the experts' ranks */
    TS_COLL_EP_COMBINE_B,  /**< expert parallel, backward of the dispatch: input gradients back */
    TS_COLL_COUNT          /**< number of kinds */
} ts_coll;

/** Names of the ledger's rows ("grad", "scalar", "ep_counts", ...). */
extern const char *const ts_coll_names[TS_COLL_COUNT];

/** This rank's side of the ledger: bytes it sent to other ranks, and time spent inside MPI calls. */
typedef struct {
    double bytes[TS_COLL_COUNT];         /**< bytes sent to other ranks (a rank's rows to itself are not counted) */
    double bytes_offnode[TS_COLL_COUNT]; /**< of those, bytes sent to ranks of another node */
    double seconds[TS_COLL_COUNT];       /**< wall time inside the calls (waiting for slower ranks included) */
    long calls[TS_COLL_COUNT];           /**< calls made */
} ts_dist_ledger;

/** A communicator and what has been sent over it. */
typedef struct {
    MPI_Comm comm;         /**< the ranks taking part (MPI_COMM_WORLD, or MPI_COMM_SELF for one process) */
    int rank;              /**< this rank */
    int size;              /**< N ranks */
    int ranks_per_node;    /**< consecutive ranks per "node" (≥ 1) */
    ts_dist_ledger ledger; /**< bytes and seconds per kind of collective */
} ts_dist;

/** @brief Set up @p d over @p comm with nodes of @p ranks_per_node ranks (which must divide the rank count). */
ts_status ts_dist_init(ts_dist *d, MPI_Comm comm, int ranks_per_node);

/** @brief The node rank @p r belongs to. */
int ts_dist_node(const ts_dist *d, int r);

/**
 * @brief Sum @p x (n floats) over the ranks, in place, in a fixed binary tree:
 * at level k = 0, 1, ..., rank r (a multiple of 2^(k+1)) adds the partial sum
 * of rank r + 2^k to its own, x_r ← x_r + x_{r+2^k}; rank 0 ends with the
 * total and broadcasts it, so every rank holds the same bits. @p tmp (n floats)
 * receives. The ledger's @p kind row records the traffic.
 */
void ts_dist_tree_sum(ts_dist *d, float *x, float *tmp, size_t n, ts_coll kind);

/**
 * @brief The same tree inside one process: @p leaves[0..L) are L buffers of n
 * floats, summed pairwise level by level (leaf i + leaf i + 2^k), the total
 * left in leaves[0]. With L a power of two and rank r holding leaves r·L ..
 * r·L + L − 1 of a job-wide tree, this is exactly that tree's lower levels.
 */
void ts_tree_sum_local(float *const *leaves, int L, size_t n);

/** @brief Account @p bytes sent by this rank to rank @p dest (skipped when dest is this rank). */
void ts_dist_count(ts_dist *d, ts_coll kind, int dest, double bytes);

/** @brief Sum every rank's ledger into @p total (a collective: every rank must call it). */
void ts_dist_ledger_sum(ts_dist *d, ts_dist_ledger *total);

#endif

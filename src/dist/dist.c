/**
 * @file dist.c
 * @brief The ranks, the fixed-order tree sum and the traffic ledger (see dist.h).
 */
#include "dist/dist.h"

#include <string.h>

const char *const ts_coll_names[TS_COLL_COUNT] = {"grad",          "scalar",       "ep_counts",   "ep_dispatch",
                                                  "ep_combine", "ep_dispatch_bwd", "ep_combine_bwd"};

ts_status ts_dist_init(ts_dist *d, MPI_Comm comm, int ranks_per_node) {
    memset(d, 0, sizeof *d);
    d->comm = comm;
    MPI_Comm_rank(comm, &d->rank);
    MPI_Comm_size(comm, &d->size);
    if (ranks_per_node < 1 || d->size % ranks_per_node != 0)
        return ts_fail(TS_ERR_ARG, "ranks per node %d: expected a divisor of the %d ranks", ranks_per_node, d->size);
    d->ranks_per_node = ranks_per_node;
    return TS_OK;
}

int ts_dist_node(const ts_dist *d, int r) { return r / d->ranks_per_node; }

void ts_dist_count(ts_dist *d, ts_coll kind, int dest, double bytes) {
    if (dest == d->rank || bytes <= 0) return;
    d->ledger.bytes[kind] += bytes;
    if (ts_dist_node(d, dest) != ts_dist_node(d, d->rank)) d->ledger.bytes_offnode[kind] += bytes;
}

/* MPI counts are ints: send a long buffer in pieces of at most 2^28 floats. */
enum { PIECE = 1 << 28 };

//! [dist-tree-sum]
void ts_dist_tree_sum(ts_dist *d, float *x, float *tmp, size_t n, ts_coll kind) {
    double t0 = MPI_Wtime();
    int r = d->rank, N = d->size;
    // Reduce: at level k the ranks that are multiples of 2^(k+1) add their right neighbour's subtree.
    for (int step = 1; step < N; step *= 2) {
        if (r % (2 * step) == 0) {
            if (r + step >= N) continue; // no right subtree at this level: the partial sum moves up unchanged
            for (size_t o = 0; o < n; o += PIECE) {
                int len = (int)(n - o < PIECE ? n - o : PIECE);
                MPI_Recv(tmp + o, len, MPI_FLOAT, r + step, 0, d->comm, MPI_STATUS_IGNORE);
            }
            for (size_t i = 0; i < n; i++) x[i] = x[i] + tmp[i]; // left (lower ranks) + right: the order never changes
        } else {
            for (size_t o = 0; o < n; o += PIECE) {
                int len = (int)(n - o < PIECE ? n - o : PIECE);
                MPI_Send(x + o, len, MPI_FLOAT, r - step, 0, d->comm);
            }
            ts_dist_count(d, kind, r - step, (double)n * sizeof(float));
            break; // this rank's subtree is summed into its left neighbour: done until the broadcast
        }
    }
    // Broadcast rank 0's total, so every rank steps the optimizer on the same bits.
    for (size_t o = 0; o < n; o += PIECE) {
        int len = (int)(n - o < PIECE ? n - o : PIECE);
        MPI_Bcast(x + o, len, MPI_FLOAT, 0, d->comm);
    }
    if (r == 0)
        for (int q = 1; q < N; q++) ts_dist_count(d, kind, q, (double)n * sizeof(float));
    d->ledger.seconds[kind] += MPI_Wtime() - t0;
    d->ledger.calls[kind]++;
}
//! [dist-tree-sum]

void ts_tree_sum_local(float *const *leaves, int L, size_t n) {
    for (int step = 1; step < L; step *= 2)
        for (int i = 0; i + step < L; i += 2 * step) {
            float *a = leaves[i];
            const float *b = leaves[i + step];
            for (size_t j = 0; j < n; j++) a[j] = a[j] + b[j];
        }
}

void ts_dist_ledger_sum(ts_dist *d, ts_dist_ledger *total) {
    MPI_Allreduce(d->ledger.bytes, total->bytes, TS_COLL_COUNT, MPI_DOUBLE, MPI_SUM, d->comm);
    MPI_Allreduce(d->ledger.bytes_offnode, total->bytes_offnode, TS_COLL_COUNT, MPI_DOUBLE, MPI_SUM, d->comm);
    MPI_Allreduce(d->ledger.seconds, total->seconds, TS_COLL_COUNT, MPI_DOUBLE, MPI_SUM, d->comm);
    MPI_Allreduce(d->ledger.calls, total->calls, TS_COLL_COUNT, MPI_LONG, MPI_SUM, d->comm);
}

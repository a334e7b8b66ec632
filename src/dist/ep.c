/**
 * @file ep.c
 * @brief Expert parallelism: dispatch, the owned experts, combine, and their backward (see ep.h).
 */
#include "dist/ep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one MoE layer's expert step keeps for its backward (on the experts' side). */
struct ep_layer {
    const ts_moe_acts *key; /* the layer's activations: which layer this is */
    int *send_rows;         /* (N) rows this rank sends to each rank: its tokens' rows for that rank's experts */
    int *send_off;          /* (N) where they start in a->xin */
    int *recv_counts;       /* (N·local) rows each rank sends for each owned expert */
    int *recv_rows;         /* (N) rows received from each rank */
    int *recv_off;          /* (N) where they start in the received (source-ordered) buffer */
    int *exp_off;           /* (local+1) each owned expert's first row in expert order */
    int *perm;              /* (R) expert-ordered row i is source-ordered row perm[i] */
    int R;                  /* rows received */
    float *ein;             /* (R,C) the owned experts' inputs, expert by expert, sources in rank order */
    ts_mlp_acts acts;       /* (R,Fe) each: the experts' intermediates */
    size_t cap;             /* rows the buffers hold */
};

static void die(const ts_ep *ep, const char *what) {
    fprintf(stderr, "tinyseek-mpi: rank %d: out of memory for %s (expert parallel)\n", ep->dist->rank, what);
    MPI_Abort(ep->dist->comm, 2); // the other ranks wait in a collective: only an abort ends them
}

static void *grow(const ts_ep *ep, void *p, size_t bytes, const char *what) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) die(ep, what);
    return q;
}

static struct ep_layer *layer_for(ts_ep *ep, const ts_moe_acts *a) {
    for (int i = 0; i < ep->n_layers; i++)
        if (ep->layers[i].key == a) return &ep->layers[i];
    if (ep->n_layers == ep->cap_layers) {
        int cap = ep->cap_layers ? 2 * ep->cap_layers : 8;
        ep->layers = grow(ep, ep->layers, (size_t)cap * sizeof *ep->layers, "layer table");
        memset(ep->layers + ep->cap_layers, 0, (size_t)(cap - ep->cap_layers) * sizeof *ep->layers);
        ep->cap_layers = cap;
    }
    struct ep_layer *L = &ep->layers[ep->n_layers++];
    int N = ep->dist->size;
    L->key = a;
    L->send_rows = grow(ep, NULL, (size_t)N * sizeof(int), "counts");
    L->send_off = grow(ep, NULL, (size_t)N * sizeof(int), "counts");
    L->recv_counts = grow(ep, NULL, (size_t)N * ep->local * sizeof(int), "counts");
    L->recv_rows = grow(ep, NULL, (size_t)N * sizeof(int), "counts");
    L->recv_off = grow(ep, NULL, (size_t)N * sizeof(int), "counts");
    L->exp_off = grow(ep, NULL, (size_t)(ep->local + 1) * sizeof(int), "counts");
    return L;
}

static void reserve(ts_ep *ep, struct ep_layer *L, size_t R) {
    size_t C = ep->C, Fe = ep->Fe;
    if (R > L->cap) {
        L->perm = grow(ep, L->perm, R * sizeof(int), "row order");
        L->ein = grow(ep, L->ein, R * C * sizeof(float), "expert inputs");
        L->acts.gate = grow(ep, L->acts.gate, R * Fe * sizeof(float), "expert activations");
        L->acts.up = grow(ep, L->acts.up, R * Fe * sizeof(float), "expert activations");
        L->acts.hidden = grow(ep, L->acts.hidden, R * Fe * sizeof(float), "expert activations");
        L->cap = R;
    }
    if (R > ep->cap_rows) {
        ep->sendbuf = grow(ep, ep->sendbuf, R * C * sizeof(float), "rows");
        ep->dbuf = grow(ep, ep->dbuf, R * C * sizeof(float), "rows");
        ep->d_mlp.gate = grow(ep, ep->d_mlp.gate, R * Fe * sizeof(float), "expert gradients");
        ep->d_mlp.up = grow(ep, ep->d_mlp.up, R * Fe * sizeof(float), "expert gradients");
        ep->d_mlp.hidden = grow(ep, ep->d_mlp.hidden, R * Fe * sizeof(float), "expert gradients");
        ep->cap_rows = R;
    }
}

/* An all-to-all of rows (C floats each), timed and counted in the ledger. */
static void alltoallv_rows(ts_ep *ep, ts_coll kind, const float *send, const int *scount, const int *soff, float *recv,
                           const int *rcount, const int *roff) {
    ts_dist *d = ep->dist;
    int N = d->size;
    int *sc = grow(ep, NULL, 4 * (size_t)N * sizeof(int), "counts"), *so = sc + N, *rc = so + N, *ro = rc + N;
    for (int q = 0; q < N; q++) { // MPI counts floats: rows · C
        sc[q] = scount[q] * ep->C;
        so[q] = soff[q] * ep->C;
        rc[q] = rcount[q] * ep->C;
        ro[q] = roff[q] * ep->C;
        ts_dist_count(d, kind, q, (double)sc[q] * sizeof(float));
    }
    double t0 = MPI_Wtime();
    MPI_Alltoallv(send, sc, so, MPI_FLOAT, recv, rc, ro, MPI_FLOAT, d->comm);
    d->ledger.seconds[kind] += MPI_Wtime() - t0;
    d->ledger.calls[kind]++;
    free(sc);
}

/* Which nodes the tokens of this rank reach: the routing half of the ledger. */
static void count_routing(ts_ep *ep, const ts_moe_acts *a, int K) {
    ts_dist *d = ep->dist;
    int n_tok = a->offsets[ep->E] / K, home = ts_dist_node(d, d->rank), most = 0;
    ts_ep_routing *r = &ep->routing;
    for (int t = 0; t < n_tok; t++) {
        unsigned long long nodes = 0; // bit n: the token reaches node n (nodes ≤ 64)
        for (int k = 0; k < K; k++) {
            int owner = a->topk_idx[t * K + k] / ep->local, node = ts_dist_node(d, owner);
            r->pairs_offrank += owner != d->rank;
            r->pairs_offnode += node != home;
            if (node != home && node < 64) nodes |= 1ULL << node;
        }
        int n = __builtin_popcountll(nodes);
        r->remote_nodes += n;
        r->tokens_offnode += n > 0;
        if (n > most) most = n;
    }
    r->tokens += n_tok;
    r->pairs += (double)n_tok * K;
    if (most > r->max_remote_nodes) r->max_remote_nodes = most;
}

//! [ep-forward]
/* a->eout = each expert's output on its rows: dispatch the rows to the experts' ranks, run the owned experts on
 * everything they received, combine the outputs back into the slots they came from. */
static void ep_forward(void *ctx, ts_moe_acts *a, const ts_moe_weights *w, const ts_config *c) {
    ts_ep *ep = ctx;
    ts_dist *d = ep->dist;
    int N = d->size, P = ep->local, C = ep->C, Fe = ep->Fe, first = d->rank * P;
    struct ep_layer *L = layer_for(ep, a);
    count_routing(ep, a, c->num_experts_per_tok);
    // rank q owns experts q·P .. q·P+P−1, so their rows are consecutive in a->xin (grouped by expert)
    for (int q = 0; q < N; q++) {
        L->send_off[q] = a->offsets[q * P];
        L->send_rows[q] = a->offsets[(q + 1) * P] - a->offsets[q * P];
    }
    // dispatch, 1: how many rows each rank will get for each of its experts
    double t0 = MPI_Wtime();
    MPI_Alltoall(a->counts, P, MPI_INT, L->recv_counts, P, MPI_INT, d->comm);
    for (int q = 0; q < N; q++) ts_dist_count(d, TS_COLL_EP_COUNTS, q, (double)P * sizeof(int));
    d->ledger.seconds[TS_COLL_EP_COUNTS] += MPI_Wtime() - t0;
    d->ledger.calls[TS_COLL_EP_COUNTS]++;
    L->R = 0;
    for (int q = 0; q < N; q++) {
        L->recv_off[q] = L->R;
        L->recv_rows[q] = 0;
        for (int j = 0; j < P; j++) L->recv_rows[q] += L->recv_counts[q * P + j];
        L->R += L->recv_rows[q];
    }
    reserve(ep, L, (size_t)L->R);
    // dispatch, 2: the rows, arriving source by source (each source's rows expert by expert)
    alltoallv_rows(ep, TS_COLL_EP_DISPATCH, a->xin, L->send_rows, L->send_off, ep->sendbuf, L->recv_rows, L->recv_off);
    // regroup by expert, sources in rank order: tokens in the order one process would gather them
    int i = 0;
    for (int j = 0; j < P; j++) {
        L->exp_off[j] = i;
        for (int q = 0; q < N; q++) {
            int src = L->recv_off[q];
            for (int jj = 0; jj < j; jj++) src += L->recv_counts[q * P + jj];
            for (int n = 0; n < L->recv_counts[q * P + j]; n++) L->perm[i++] = src + n;
        }
    }
    L->exp_off[P] = i;
    for (int r = 0; r < L->R; r++) memcpy(L->ein + (size_t)r * C, ep->sendbuf + (size_t)L->perm[r] * C, C * sizeof(float));
    // the owned experts, each on all of its rows at once
    for (int j = 0; j < P; j++) {
        int n = L->exp_off[j + 1] - L->exp_off[j];
        size_t off = (size_t)L->exp_off[j];
        if (n == 0) continue;
        ts_mlp_acts ea = {L->acts.gate + off * Fe, L->acts.up + off * Fe, L->acts.hidden + off * Fe};
        mlp_forward(ep->dbuf + off * C, &ea, L->ein + off * C, &w->experts[first + j], n, C, Fe);
    }
    // combine: back to source order, then every row to the rank (and the slot) it came from
    for (int r = 0; r < L->R; r++) memcpy(ep->sendbuf + (size_t)L->perm[r] * C, ep->dbuf + (size_t)r * C, C * sizeof(float));
    alltoallv_rows(ep, TS_COLL_EP_COMBINE, ep->sendbuf, L->recv_rows, L->recv_off, a->eout, L->send_rows, L->send_off);
}
//! [ep-forward]

//! [ep-backward]
/* The transpose of the forward: the combine's backward dispatches the output gradients to the experts' ranks,
 * the dispatch's backward combines the input gradients back into the slots. */
static void ep_backward(void *ctx, float *d_xin, const ts_moe_weights *dw, const float *d_eout, const ts_moe_acts *a,
                        const ts_moe_weights *w, const ts_config *c) {
    ts_ep *ep = ctx;
    ts_dist *d = ep->dist;
    int P = ep->local, C = ep->C, Fe = ep->Fe, first = d->rank * P;
    struct ep_layer *L = NULL;
    for (int i = 0; i < ep->n_layers && !L; i++)
        if (ep->layers[i].key == a) L = &ep->layers[i];
    if (!L) {
        fprintf(stderr, "tinyseek-mpi: rank %d: expert-parallel backward without its forward\n", d->rank);
        MPI_Abort(d->comm, 2);
        return;
    }
    // backward of the combine: the output gradients travel the way the outputs came, reversed
    alltoallv_rows(ep, TS_COLL_EP_DISPATCH_B, d_eout, L->send_rows, L->send_off, ep->sendbuf, L->recv_rows, L->recv_off);
    for (int r = 0; r < L->R; r++) memcpy(ep->dbuf + (size_t)r * C, ep->sendbuf + (size_t)L->perm[r] * C, C * sizeof(float));
    // the owned experts' backward: weight gradients over every rank's tokens, input gradients per row
    float *d_in = grow(ep, NULL, (size_t)L->R * C * sizeof(float), "input gradients");
    memset(d_in, 0, (size_t)L->R * C * sizeof(float));
    for (int j = 0; j < P; j++) {
        int n = L->exp_off[j + 1] - L->exp_off[j];
        size_t off = (size_t)L->exp_off[j];
        if (n == 0) continue;
        ts_mlp_acts ea = {L->acts.gate + off * Fe, L->acts.up + off * Fe, L->acts.hidden + off * Fe};
        mlp_backward(d_in + off * C, &dw->experts[first + j], &ep->d_mlp, ep->dbuf + off * C, &ea, L->ein + off * C,
                     &w->experts[first + j], n, C, Fe);
    }
    // backward of the dispatch: each input gradient back to its token's rank and slot, where moe_backward adds them
    for (int r = 0; r < L->R; r++) memcpy(ep->sendbuf + (size_t)L->perm[r] * C, d_in + (size_t)r * C, C * sizeof(float));
    alltoallv_rows(ep, TS_COLL_EP_COMBINE_B, ep->sendbuf, L->recv_rows, L->recv_off, d_xin, L->send_rows,
                   L->send_off);
    free(d_in);
}
//! [ep-backward]

ts_status ts_ep_init(ts_ep *ep, ts_dist *d, ts_model *m) {
    memset(ep, 0, sizeof *ep);
    const ts_config *c = &m->cfg;
    if (c->n_routed_experts <= 0 || ts_model_moe_layers(m) == 0)
        return ts_fail(TS_ERR_ARG, "expert parallel: the model has no routed experts");
    if (c->n_routed_experts % d->size != 0)
        return ts_fail(TS_ERR_ARG, "expert parallel: %d routed experts do not split over %d ranks", c->n_routed_experts,
                       d->size);
    ep->dist = d;
    ep->E = c->n_routed_experts;
    ep->local = ep->E / d->size;
    ep->C = c->hidden_size;
    ep->Fe = c->moe_intermediate_size;
    ep->remote = (ts_moe_remote){.forward = ep_forward, .backward = ep_backward, .ctx = ep};
    for (int l = 0; l < c->num_hidden_layers + c->num_nextn_predict_layers; l++)
        if (ts_moe_is_layer(c, l)) m->w.layers[l].moe.remote = &ep->remote;
    return TS_OK;
}

void ts_ep_free(ts_ep *ep, ts_model *m) {
    const ts_config *c = &m->cfg;
    for (int l = 0; ep->dist && l < c->num_hidden_layers + c->num_nextn_predict_layers; l++)
        if (ts_moe_is_layer(c, l)) m->w.layers[l].moe.remote = NULL;
    for (int i = 0; i < ep->n_layers; i++) {
        struct ep_layer *L = &ep->layers[i];
        free(L->send_rows);
        free(L->send_off);
        free(L->recv_counts);
        free(L->recv_rows);
        free(L->recv_off);
        free(L->exp_off);
        free(L->perm);
        free(L->ein);
        free(L->acts.gate);
        free(L->acts.up);
        free(L->acts.hidden);
    }
    free(ep->layers);
    free(ep->sendbuf);
    free(ep->dbuf);
    free(ep->d_mlp.gate);
    free(ep->d_mlp.up);
    free(ep->d_mlp.hidden);
    memset(ep, 0, sizeof *ep);
}

int ts_ep_owns(const ts_ep *ep, int e) { return e / ep->local == ep->dist->rank; }

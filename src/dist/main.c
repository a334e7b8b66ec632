/**
 * @file main.c
 * @brief `tinyseek-mpi pretrain`: chapter 2's pretraining, data parallel over
 *        the ranks of an MPI job, optionally with the MoE layers' experts split
 *        over the ranks (appendix C). Run it under mpirun:
 *
 *     mpirun --allow-run-as-root --oversubscribe -np 2 build/release/tinyseek-mpi pretrain \
 *         --config configs/ch05-moe.json --data runs/ch01/data --tokenizer runs/ch01/tokenizer.json \
 *         --out runs/appC/dp2 --steps 20 --batch 16 --seq 64 --shards 4 [--ep] [--ledger F]
 *
 * Rank 0 writes the checkpoint, metrics.csv and the ledger (bytes and seconds
 * per collective, and for --ep where the tokens' experts live). Exit status:
 * 0 done, 2 bad input, 3 diverged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/bpe.h"
#include "dist/dist.h"
#include "dist/dp.h"
#include "dist/ep.h"
#include "io/fileio.h"
#include "train/pretrain.h"

static int encode_file(const bpe_tokenizer *tok, const char *path, int **ids, size_t *n) {
    char *text = NULL;
    size_t len = 0;
    if (ts_read_file(path, &text, &len)) return cli_lib_error();
    ts_status st = bpe_encode(tok, text, len, ids, n);
    free(text);
    return st ? cli_lib_error() : 0;
}

typedef struct {
    const ts_token_stream *stream;
    int B, T, n_batches;
} eval_windows;

static float eval_held_out(void *ctx, ts_model *m) {
    const eval_windows *e = ctx;
    return ts_eval_loss(m, e->stream, e->B, e->T, e->n_batches);
}

/* The ledger, summed over the ranks, per step: one "name,value" row each. */
static int write_ledger(const char *path, ts_dist *d, const ts_ep *ep, int use_ep, int shards, long steps,
                        const ts_train_result *res, int K) {
    ts_dist_ledger total;
    ts_dist_ledger_sum(d, &total);
    ts_ep_routing r = {0};
    if (use_ep) {
        double mine[6] = {ep->routing.tokens, ep->routing.pairs, ep->routing.pairs_offrank, ep->routing.pairs_offnode,
                          ep->routing.remote_nodes, ep->routing.tokens_offnode}, sum[6];
        MPI_Allreduce(mine, sum, 6, MPI_DOUBLE, MPI_SUM, d->comm);
        MPI_Allreduce(&ep->routing.max_remote_nodes, &r.max_remote_nodes, 1, MPI_INT, MPI_MAX, d->comm);
        r.tokens = sum[0], r.pairs = sum[1], r.pairs_offrank = sum[2], r.pairs_offnode = sum[3];
        r.remote_nodes = sum[4], r.tokens_offnode = sum[5];
    }
    if (d->rank != 0 || !path) return 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return cli_error("tinyseek-mpi: out of memory for the ledger");
    double comm = 0;
    for (int k = 0; k < TS_COLL_COUNT; k++) comm += total.seconds[k];
    fprintf(f, "name,value\nranks,%d\nranks_per_node,%d\nshards,%d\nexpert_parallel,%d\nsteps,%ld\n", d->size,
            d->ranks_per_node, shards, use_ep, steps);
    fprintf(f, "seconds,%.6f\ntokens_per_s,%.3f\nfinal_loss,%.6f\n", res->seconds, res->tokens_per_s, res->final_loss);
    // the share of a rank's training time spent inside MPI calls (waiting for the other ranks included), mean over ranks
    fprintf(f, "comm_fraction,%.6f\n", res->seconds > 0 ? comm / d->size / res->seconds : 0.0);
    for (int k = 0; k < TS_COLL_COUNT; k++)
        fprintf(f, "%s_bytes_per_step,%.1f\n%s_offnode_bytes_per_step,%.1f\n%s_seconds_per_step,%.6f\n%s_calls_per_step,%.2f\n",
                ts_coll_names[k], total.bytes[k] / steps, ts_coll_names[k], total.bytes_offnode[k] / steps,
                ts_coll_names[k], total.seconds[k] / d->size / steps, ts_coll_names[k], (double)total.calls[k] / d->size / steps);
    if (use_ep) {
        double tok = r.tokens > 0 ? r.tokens : 1;
        fprintf(f, "topk,%d\ntokens_routed_per_step,%.1f\npairs_offrank_share,%.6f\npairs_offnode_share,%.6f\n", K,
                r.tokens / steps, r.pairs_offrank / (r.pairs > 0 ? r.pairs : 1), r.pairs_offnode / (r.pairs > 0 ? r.pairs : 1));
        fprintf(f, "tokens_offnode_share,%.6f\nremote_nodes_per_token,%.6f\nmax_remote_nodes,%d\n", r.tokens_offnode / tok,
                r.remote_nodes / tok, r.max_remote_nodes);
    }
    fclose(f);
    ts_status st = ts_write_file_atomic(path, buf, len);
    free(buf);
    return st ? cli_lib_error() : 0;
}

static int cmd_pretrain_mpi(int argc, char **argv, ts_dist *d) {
    ts_train_opts o = ts_train_opts_default();
    const char *config = NULL, *data = NULL, *tokenizer = NULL, *out = NULL, *ledger = NULL;
    uint64_t init_seed = 1;
    int threads = 1, quiet = 0, shards = 0, use_ep = 0, ranks_per_node = 1, n_group = 0, topk_group = 0;
    o.eval_batches = 0;
    cli_opt opts[] = {
        {"config", OPT_STR, &config, "model config.json", 1, 0},
        {"data", OPT_STR, &data, "folder written by `tinyseek data` (pretrain_train.txt, pretrain_test.txt)", 1, 0},
        {"tokenizer", OPT_STR, &tokenizer, "tokenizer.json", 1, 0},
        {"out", OPT_STR, &out, "checkpoint folder rank 0 writes (metrics.csv, expert_load.csv too)", 1, 0},
        {"ledger", OPT_STR, &ledger, "CSV of bytes and seconds per collective, per step, summed over the ranks", 1, 0},
        {"steps", OPT_LONG, &o.steps, "optimizer steps", 1, 1e9},
        {"batch", OPT_INT, &o.batch_size, "sequences per step, the whole job's (B)", 1, 4096},
        {"seq", OPT_INT, &o.seq_len, "tokens per sequence (T)", 2, 1 << 20},
        {"shards", OPT_INT, &shards, "shards per batch, fixed whatever the rank count (default: the rank count)", 1, 4096},
        {"ep", OPT_FLAG, &use_ep, "expert parallel: each rank runs E/N of every MoE layer's routed experts", 1, 0},
        {"ranks-per-node", OPT_INT, &ranks_per_node, "consecutive ranks that count as one node", 1, 4096},
        {"n-group", OPT_INT, &n_group, "override the config's n_group (node-limited routing: one group per node)", 1, 4096},
        {"topk-group", OPT_INT, &topk_group, "override the config's topk_group (M: the most nodes a token reaches)", 1, 4096},
        {"lr", OPT_FLOAT, &o.lr, "peak learning rate", 0, 10},
        {"warmup", OPT_LONG, &o.warmup, "linear warmup steps", 0, 1e9},
        {"eval-batches", OPT_INT, &o.eval_batches, "held-out batches at the first and last step (0 = none)", 0, 100000},
        {"seed", OPT_U64, &o.seed, "data-order seed", 1, 0},
        {"init-seed", OPT_U64, &init_seed, "weight-initialisation seed", 1, 0},
        {"bias-update-speed", OPT_FLOAT, &o.bias_update_speed, "MoE: auxiliary-loss-free balancing speed", 0, 10},
        {"threads", OPT_INT, &threads, "threads per rank (default 1: the ranks are the parallelism)", 0, 1024},
        {"quiet", OPT_FLAG, &quiet, "no progress line", 1, 0},
    };
    int rc = cli_parse("pretrain", "--config F --data DIR --tokenizer F --out DIR [flags] (under mpirun)", argc, argv,
                       opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    if (!config || !data || !tokenizer || !out) return cli_error("pretrain: --config, --data, --tokenizer and --out are required");
    if (o.warmup >= o.steps && o.steps > 1) return cli_error("pretrain: --warmup (%ld) must be below --steps (%ld)", o.warmup, o.steps);
    if (ts_dist_init(d, MPI_COMM_WORLD, ranks_per_node)) return cli_lib_error();
    if (!shards) shards = d->size;
    if (use_ep && shards != d->size)
        return cli_error("pretrain: --ep runs one shard per rank (the experts see the whole step at once): --shards %d, %d ranks",
                         shards, d->size);
    ts_set_num_threads(threads);
    o.quiet = quiet || d->rank != 0;
    o.eval_every = 0;
    char metrics[4096], loads[4096];
    snprintf(metrics, sizeof metrics, "%s/metrics.csv", out);
    snprintf(loads, sizeof loads, "%s/expert_load.csv", out);
    if (d->rank == 0) {
        o.out_dir = out;
        o.metrics_path = metrics;
        o.expert_load_path = loads;
        o.tokenizer_json = tokenizer;
    }
    ts_config cfg;
    if (ts_config_load(&cfg, config)) return cli_lib_error();
    if (n_group) cfg.n_group = n_group;
    if (topk_group) cfg.topk_group = topk_group;
    if (cfg.n_routed_experts > 0 && (cfg.n_routed_experts % cfg.n_group || cfg.topk_group > cfg.n_group))
        return cli_error("pretrain: n_group %d must divide the %d experts, and topk_group %d must not exceed it", cfg.n_group,
                         cfg.n_routed_experts, cfg.topk_group);
    bpe_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    if (bpe_load(&tok, tokenizer)) return cli_lib_error();
    int *train_ids = NULL, *eval_ids = NULL;
    size_t n_train = 0, n_eval = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/pretrain_train.txt", data);
    if (!(rc = encode_file(&tok, path, &train_ids, &n_train)) && o.eval_batches > 0) {
        snprintf(path, sizeof path, "%s/pretrain_test.txt", data);
        rc = encode_file(&tok, path, &eval_ids, &n_eval);
    }
    bpe_free(&tok);
    ts_model m;
    memset(&m, 0, sizeof m);
    ts_dp dp;
    ts_ep ep;
    memset(&dp, 0, sizeof dp);
    memset(&ep, 0, sizeof ep);
    ts_batch_source windows;
    ts_token_stream train = {train_ids, n_train}, eval = {eval_ids, n_eval};
    if (rc) goto done;
    if (ts_model_create(&m, &cfg, TS_MODEL_TRAIN) || ts_dp_init(&dp, d, &m, shards, o.batch_size) ||
        (use_ep && ts_ep_init(&ep, d, &m)) || ts_windows_source(&windows, &train, o.batch_size, o.seq_len, o.seed)) {
        rc = cli_lib_error();
        goto done;
    }
    ts_model_init_weights(&m, init_seed); // the same seed everywhere: every rank starts from the same weights
    eval_windows held_out = {&eval, o.batch_size, o.seq_len, o.eval_batches};
    ts_trainer t = {
        .label = "pretrain",
        .data = &windows,
        // evaluation is a forward: with --ep a collective every rank runs; otherwise rank 0's alone
        .eval = o.eval_batches > 0 && n_eval > (size_t)o.seq_len && (use_ep || d->rank == 0) ? eval_held_out : NULL,
        .eval_ctx = &held_out,
        .fingerprint = ts_train_fingerprint(&m, &o),
    };
    ts_dp_trainer(&dp, &t);
    if (d->rank == 0 && !quiet)
        printf("pretrain: %d ranks (%d per node), %d shards of %d sequences%s, matmul %s\n", d->size, ranks_per_node,
               shards, o.batch_size / shards, use_ep ? ", experts split over the ranks" : "", ts_matmul_backend());
    ts_train_result res;
    if (ts_train(&m, &t, &o, &res)) {
        rc = cli_lib_error();
        if (res.diverged_step) rc = 3;
        goto done;
    }
    rc = write_ledger(ledger, d, &ep, use_ep, shards, res.steps_run > 0 ? res.steps_run : 1, &res, cfg.num_experts_per_tok);
    if (d->rank == 0 && !rc)
        printf("pretrain: %ld steps in %.1f s, %.0f tokens/s, final loss %.4f -> %s\n", res.steps_run, res.seconds,
               res.tokens_per_s, res.final_loss, out);
done:
    if (use_ep && ep.dist) ts_ep_free(&ep, &m);
    ts_dp_free(&dp);
    if (m.params.data) ts_model_free(&m);
    free(train_ids);
    free(eval_ids);
    return rc;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    ts_dist d;
    memset(&d, 0, sizeof d);
    int rc;
    if (argc < 2 || strcmp(argv[1], "pretrain") != 0) {
        fprintf(stderr, "usage: mpirun -np N tinyseek-mpi pretrain --config F --data DIR --tokenizer F --out DIR [flags]\n"
                        "       (tinyseek-mpi pretrain --help lists the flags)\n");
        rc = 2;
    } else {
        rc = cmd_pretrain_mpi(argc - 1, argv + 1, &d);
    }
    // A rank that failed alone would leave the others waiting in a collective: end the whole job.
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return worst;
}

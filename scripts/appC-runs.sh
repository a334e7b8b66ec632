#!/usr/bin/env bash
# Appendix C's measurement (make appC): chapter 5's MoE model (configs/ch05-moe.json)
# pretrained on chapter 1's data by tinyseek-mpi, under mpirun, on this one machine:
#
#   data parallel    N = 1, 2, 4 ranks, the batch of 16 x 64 tokens cut into the same
#                    4 shards each time: tokens/s, the share of time inside MPI calls,
#                    the gradient bytes summed per step, and whether the N runs end
#                    with the same weights (the sha256 of model.safetensors); and one
#                    process with one shard (chapter 2's step) against 4 shards
#   expert parallel  N = 2 and 4 ranks, each rank a "node" (and N = 4 as 2 nodes of 2),
#                    experts grouped one group per node, with node-limited routing
#                    (each token to at most M nodes) and without (M = all nodes):
#                    bytes per step of each collective, the share of (token, expert)
#                    pairs and of tokens that cross nodes, distinct other nodes per token
#
#   scripts/appC-runs.sh TINYSEEK-MPI OUTDIR STEPS
#
# One thread per rank; the ranks share the machine's cores (--oversubscribe), so
# the time of N > cores ranks is the time of taking turns, not of parallel work.
# Writes OUTDIR/<run>/ (metrics.csv, ledger.csv, the checkpoint) and
#   OUTDIR/dp.csv       one row per data-parallel run
#   OUTDIR/shards.csv   4 shards against 1 on one process: how far the weights end apart
#   OUTDIR/ep.csv       one row per expert-parallel run
#   OUTDIR/traffic.csv  the forward dispatch's bytes between nodes, per topology (figures/appC-traffic.gp)
#   OUTDIR/summary.txt  both tables, readable
# and copies the summaries the appendix quotes into results/appC/ (scripts/save-results.sh).
set -euo pipefail
bin=${1:?usage: appC-runs.sh TINYSEEK-MPI OUTDIR STEPS}
out=${2:?usage: appC-runs.sh TINYSEEK-MPI OUTDIR STEPS}
steps=${3:?usage: appC-runs.sh TINYSEEK-MPI OUTDIR STEPS}
for f in runs/ch01/data/pretrain_train.txt runs/ch01/tokenizer.json configs/ch05-moe.json; do
  [[ -f $f ]] || { echo "appC-runs: $f is missing (make ch1 writes runs/ch01)" >&2; exit 2; }
done
mpirun=${MPIRUN:-mpirun}
flags=(--oversubscribe)
[[ $(id -u) == 0 ]] && flags+=(--allow-run-as-root)
mkdir -p "$out"
common=(--config configs/ch05-moe.json --data runs/ch01/data --tokenizer runs/ch01/tokenizer.json
        --steps "$steps" --batch 16 --seq 64 --warmup 5 --bias-update-speed 0.01 --threads 1 --quiet)

run() {   # run NAME RANKS FLAGS...: one job, its output in OUTDIR/NAME.log
  local name=$1 n=$2
  shift 2
  OMP_NUM_THREADS=1 "$mpirun" "${flags[@]}" -np "$n" "$bin" pretrain --out "$out/$name" --ledger "$out/$name/ledger.csv" \
      "${common[@]}" "$@" >"$out/$name.log" 2>&1 ||
    { echo "appC-runs: $name failed:" >&2; tail -5 "$out/$name.log" >&2; return 1; }
  echo "appC: $name: $(tail -1 "$out/$name.log")"
}

t0=$(date +%s)
for n in 1 2 4; do run "dp-n$n" "$n" --shards 4; done
run dp-n1-s1 1 --shards 1   # one shard: chapter 2's step, the whole batch in one backward
# expert parallel: one expert group per node; M = 1 of 2 nodes or 2 of 4 (V3: 4 of 8), and M = every node
run ep-n2-limited 2 --ep --ranks-per-node 1 --n-group 2 --topk-group 1
run ep-n2-free 2 --ep --ranks-per-node 1 --n-group 2 --topk-group 2
run ep-n4-limited 4 --ep --ranks-per-node 1 --n-group 4 --topk-group 2
run ep-n4-free 4 --ep --ranks-per-node 1 --n-group 4 --topk-group 4
run ep-n4x2-limited 4 --ep --ranks-per-node 2 --n-group 2 --topk-group 1
run ep-n4x2-free 4 --ep --ranks-per-node 2 --n-group 2 --topk-group 2
echo "appC: 10 jobs in $(( $(date +%s) - t0 )) s"

python3 - "$out" <<'PY'
import csv, hashlib, os, sys
out = sys.argv[1]
C = 64  # hidden size of configs/ch05-moe.json: the width of a dispatched row

def ledger(name):
    with open(os.path.join(out, name, "ledger.csv")) as f:
        return {r["name"]: float(r["value"]) for r in csv.DictReader(f)}

def weights(name):
    with open(os.path.join(out, name, "model.safetensors"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]

ref = weights("dp-n1")

def tensors(name):
    """model.safetensors as {tensor name: array of float32}"""
    import array, json, struct
    with open(os.path.join(out, name, "model.safetensors"), "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    head = json.loads(blob[8:8 + n])
    res = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a = array.array("f")
        a.frombytes(blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
        res[k] = a
    return res

# 4 shards against 1: the same gradient added in another order; how far apart are the weights after the run?
w4, w1 = tensors("dp-n1"), tensors("dp-n1-s1")
# ||w4 - w1|| / ||w1|| over every weight (the selection biases move by ±γ steps, so one load that lands on the
# other side of the mean moves a bias by 2γ: a per-tensor maximum would show that, not the drift of the weights)
num = sum((x - y) ** 2 for k in w1 for x, y in zip(w4[k], w1[k]))
den = sum(y * y for k in w1 for y in w1[k])
rel = (num / den) ** 0.5
L4, L1 = ledger("dp-n1"), ledger("dp-n1-s1")
with open(os.path.join(out, "shards.csv"), "w") as f:
    f.write("shards_a,shards_b,max_rel_weight_diff,final_loss_a,final_loss_b,loss_rel_diff,tokens_per_s_a,tokens_per_s_b\n")
    f.write(f"4,1,{rel:.3g},{L4['final_loss']:.6f},{L1['final_loss']:.6f},"
            f"{abs(L4['final_loss'] - L1['final_loss']) / L1['final_loss']:.3g},{L4['tokens_per_s']:.1f},{L1['tokens_per_s']:.1f}\n")
with open(os.path.join(out, "dp.csv"), "w") as f:
    f.write("ranks,shards,steps,tokens_per_s,speedup,comm_fraction,grad_mb_per_step,grad_seconds_per_step,"
            "final_loss,weights_sha256,same_bits_as_n1\n")
    base = ledger("dp-n1")["tokens_per_s"]
    for n in (1, 2, 4):
        L = ledger(f"dp-n{n}")
        w = weights(f"dp-n{n}")
        f.write(f"{n},{int(L['shards'])},{int(L['steps'])},{L['tokens_per_s']:.1f},{L['tokens_per_s'] / base:.3f},"
                f"{L['comm_fraction']:.4f},{L['grad_bytes_per_step'] / 1e6:.3f},{L['grad_seconds_per_step']:.5f},"
                f"{L['final_loss']:.5f},{w},{int(w == ref)}\n")

kinds = ["ep_counts", "ep_dispatch", "ep_combine", "ep_dispatch_bwd", "ep_combine_bwd"]
with open(os.path.join(out, "ep.csv"), "w") as f:
    f.write("run,ranks,ranks_per_node,nodes,topk_group," + ",".join(f"{k}_kb" for k in kinds) +
            ",ep_kb,ep_offnode_kb,grad_mb,tokens_per_step,pairs_offrank_share,pairs_offnode_share,"
            "tokens_offnode_share,remote_nodes_per_token,max_remote_nodes,dedup_dispatch_offnode_kb,dispatch_offnode_kb\n")
    for name in ("ep-n2-free", "ep-n2-limited", "ep-n4-free", "ep-n4-limited", "ep-n4x2-free", "ep-n4x2-limited"):
        L = ledger(name)
        n, rpn = int(L["ranks"]), int(L["ranks_per_node"])
        M = {"ep-n2-free": 2, "ep-n2-limited": 1, "ep-n4-free": 4, "ep-n4-limited": 2, "ep-n4x2-free": 2,
             "ep-n4x2-limited": 1}[name]
        kb = [L[f"{k}_bytes_per_step"] / 1e3 for k in kinds]
        off = sum(L[f"{k}_offnode_bytes_per_step"] for k in kinds) / 1e3
        # what a dispatch that sends each token once per node (V3's, DeepEP's) would move between nodes, forward:
        # the distinct other nodes per token, times the tokens a step routes, times one row of C floats
        dedup = L["remote_nodes_per_token"] * L["tokens_routed_per_step"] * C * 4 / 1e3
        f.write(f"{name},{n},{rpn},{n // rpn},{M}," + ",".join(f"{x:.1f}" for x in kb) +
                f",{sum(kb):.1f},{off:.1f},{L['grad_bytes_per_step'] / 1e6:.3f},{L['tokens_routed_per_step']:.0f},"
                f"{L['pairs_offrank_share']:.4f},{L['pairs_offnode_share']:.4f},{L['tokens_offnode_share']:.4f},"
                f"{L['remote_nodes_per_token']:.4f},{int(L['max_remote_nodes'])},{dedup:.1f},"
                f"{L['ep_dispatch_offnode_bytes_per_step'] / 1e3:.1f}\n")

# for figures/appC-traffic.gp: the forward dispatch's bytes between nodes per step, three ways, per topology
with open(os.path.join(out, "ep.csv")) as f:
    ep = {r["run"]: r for r in csv.DictReader(f)}
with open(os.path.join(out, "traffic.csv"), "w") as f:
    f.write("topology,per_pair_free_kb,per_pair_limited_kb,per_node_free_kb,per_node_limited_kb\n")
    for topo, label in (("n2", "2 nodes x 1 rank"), ("n4", "4 nodes x 1 rank"), ("n4x2", "2 nodes x 2 ranks")):
        a, b = ep[f"ep-{topo}-free"], ep[f"ep-{topo}-limited"]
        f.write(f"{label} (M={b['topk_group']}),{a['dispatch_offnode_kb']},{b['dispatch_offnode_kb']},"
                f"{a['dedup_dispatch_offnode_kb']},{b['dedup_dispatch_offnode_kb']}\n")
PY

{
  echo "Appendix C: chapter 5's MoE model, $steps steps of 16 x 64 tokens, one thread per rank, $(nproc) cores"
  echo
  echo "data parallel (4 shards per batch at every rank count):"
  awk -F, 'NR > 1 { printf "  %d ranks: %7.0f tokens/s (x%.2f), %4.1f%% of the time in MPI, %.2f MB of gradients summed per step, weights %s (%s)\n",
                    $1, $4, $5, 100 * $6, $7, $10, $11 ? "same bits as 1 rank" : "DIFFERENT from 1 rank" }' "$out/dp.csv"
  awk -F, 'NR > 1 { printf "  one process, 4 shards against 1 (one backward over the batch): weights %s apart (||w4 - w1|| / ||w1||), final loss %s relative; %.0f against %.0f tokens/s\n", $3, $6, $7, $8 }' "$out/shards.csv"
  echo
  echo "expert parallel (kB per step, all ranks; M = most nodes a token may reach):"
  awk -F, 'NR > 1 { printf "  %-16s %d ranks, %d nodes, M=%d: dispatch %.0f, combine %.0f, backward %.0f + %.0f, counts %.1f; between nodes %.0f of %.0f; pairs off node %.1f%%, tokens off node %.1f%%, other nodes per token %.2f (max %d); once-per-node dispatch between nodes %.0f\n",
                    $1, $2, $4, $5, $7, $8, $9, $10, $6, $12, $11, 100 * $16, 100 * $17, $18, $19, $20 }' "$out/ep.csv"
} | tee "$out/summary.txt"

# The summaries the appendix quotes, into the tracked results/appC/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" appC \
  dp.csv shards.csv ep.csv traffic.csv summary.txt dp-n2/ledger.csv

#!/usr/bin/env bash
# Appendix B's experiment (make appB): chapter 5's MoE model (configs/ch05-moe.json,
# bias balancing γ = 0.01, as chapter 5's moe-free run) pretrained three ways on
# the same data, from the same weights, for each of 3 seeds:
#
#   fp32        every product in float32 (chapter 5's run)
#   fp8-tile    --fp8: the blocks' linear layers in simulated E4M3 with V3's
#               1x128 activation tiles and 128x128 weight blocks
#   fp8-tensor  --fp8 --fp8-scaling tensor: the same with one scale per tensor
#   fp32-alt    float32 again, with the other sgemm (TS_MATMUL: OpenBLAS or the
#               project's C loops, whichever fp32 did not use): the same
#               products summed in another order, so it shows how far two runs
#               drift apart from rounding differences alone (the noise floor
#               the FP8 gaps are to be read against); skipped by a build
#               without OpenBLAS, which has only one sgemm
#
#   scripts/appB-runs.sh TINYSEEK OUTDIR STEPS
#
# Each run is one thread; two run at a time (the machine has two cores), the
# slow FP8 runs first. Seed s sets both the data order and the initial weights.
# Writes OUTDIR/<precision>-s<seed>/metrics.csv (and the checkpoint), then
#   OUTDIR/runs.csv     one row per run: the final losses
#   OUTDIR/results.csv  per precision, mean and sd over the seeds of the final
#                       losses and of the relative gap |L - L_fp32| / L_fp32 (%)
#   OUTDIR/gap.csv      per step, the relative gap of the training loss (%),
#                       mean over seeds, for figures/appB-loss.gp
#   OUTDIR/phases.csv   gap.csv averaged over steps 1-60 and 61-STEPS
#   OUTDIR/summary.txt  the results table, readable
# "Final training loss" is the mean of the last 25 steps' training losses (one
# step's batch is noisy; the runs of one seed see the same batches, so their
# losses are compared step by step); the held-out loss is evaluated in float32
# on the same fixed windows for every run, so its gap is what FP8 training did
# to the weights.
set -euo pipefail
ts=${1:?usage: appB-runs.sh TINYSEEK OUTDIR STEPS}
out=${2:?usage: appB-runs.sh TINYSEEK OUTDIR STEPS}
steps=${3:?usage: appB-runs.sh TINYSEEK OUTDIR STEPS}
seeds=(1 2 3)
for f in runs/ch01/data/pretrain_train.txt runs/ch01/tokenizer.json configs/ch05-moe.json; do
  [[ -f $f ]] || { echo "appB-runs: $f is missing (make ch1 writes runs/ch01)" >&2; exit 2; }
done
mkdir -p "$out"
common=(--config configs/ch05-moe.json --data runs/ch01/data --tokenizer runs/ch01/tokenizer.json
        --steps "$steps" --batch 16 --seq 64 --warmup 20 --eval-every 25 --eval-batches 4
        --bias-update-speed 0.01 --threads 1 --quiet)

# The sgemm the fp32 runs use by default, and the other one for fp32-alt.
probe=()
for a in "${common[@]}"; do [[ $a == --quiet ]] || probe+=("$a"); done
backend=$("$ts" pretrain --out "$out/probe" "${probe[@]}" --steps 1 --warmup 0 --eval-every 0 2>&1 |
          sed -n 's/.*, matmul \(.*\)$/\1/p')
rm -rf "$out/probe"
case $backend in
  openblas*) alt=c ;;
  "c loops (faster here than openblas"*) alt=openblas ;;
  *) alt= ;;
esac
precs=(fp8-tile fp8-tensor fp32)
[[ -n $alt ]] && precs+=(fp32-alt)
echo "appB: float32 sgemm: $backend; fp32-alt: ${alt:-none (one sgemm in this build)}"

run() {   # run PRECISION SEED: one training run, its output in OUTDIR/PRECISION-sSEED.log
  local prec=$1 seed=$2 flags=() env=()
  case $prec in
    fp32) ;;
    fp32-alt) env=("TS_MATMUL=$alt") ;;
    fp8-tile) flags=(--fp8 --fp8-scaling tile) ;;
    fp8-tensor) flags=(--fp8 --fp8-scaling tensor) ;;
  esac
  local name=$prec-s$seed
  env "${env[@]}" "$ts" pretrain --out "$out/$name" "${common[@]}" --seed "$seed" --init-seed "$seed" "${flags[@]}" \
      >"$out/$name.log" 2>&1 ||
    { echo "appB-runs: $name failed:" >&2; tail -3 "$out/$name.log" >&2; return 1; }
  echo "appB: $name: $(sed -n 's/^pretrain: \([0-9]* steps\) in [0-9.]* s.*final loss \([0-9.]*\), held-out loss \([0-9.]*\).*/\1, final loss \2, held-out loss \3/p' "$out/$name.log")"
}
# Longest first, two at a time: the six FP8 runs, then the float32 ones.
t0=$(date +%s)
running=0
for prec in "${precs[@]}"; do
  for s in "${seeds[@]}"; do
    run "$prec" "$s" &
    running=$((running + 1))
    if ((running >= 2)); then wait -n; running=$((running - 1)); fi
  done
done
wait
echo "appB: $(( ${#precs[@]} * ${#seeds[@]} )) runs in $(( $(date +%s) - t0 )) s (wall clock, 2 at a time)"

python3 - "$out" "${precs[*]}" "${seeds[@]}" <<'EOF'
import csv, math, os, sys
out, seeds = sys.argv[1], [int(s) for s in sys.argv[3:]]
order = ["fp32", "fp8-tile", "fp8-tensor", "fp32-alt"]
precs = [p for p in order if p in sys.argv[2].split()]
TAIL = 25  # final training loss: mean of the last TAIL steps

def metrics(prec, seed):
    with open(os.path.join(out, f"{prec}-s{seed}", "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    loss = [float(r["loss"]) for r in rows]
    vals = [float(r["val_loss"]) for r in rows if r["val_loss"] not in ("nan", "")]
    return loss, vals[-1]

def mean_sd(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd

runs = {(p, s): metrics(p, s) for p in precs for s in seeds}
with open(os.path.join(out, "runs.csv"), "w") as f:
    f.write("precision,seed,final_train_loss,final_val_loss,train_gap_pct,val_gap_pct,train_diff_pct,val_diff_pct\n")
    for p in precs:
        for s in seeds:
            loss, val = runs[(p, s)]
            loss32, val32 = runs[("fp32", s)]
            tl, tl32 = sum(loss[-TAIL:]) / TAIL, sum(loss32[-TAIL:]) / TAIL
            dt, dv = 100 * (tl - tl32) / tl32, 100 * (val - val32) / val32  # signed: > 0 means worse than fp32
            f.write(f"{p},{s},{tl:.5f},{val:.5f},{abs(dt):.4f},{abs(dv):.4f},{dt:.4f},{dv:.4f}\n")

with open(os.path.join(out, "runs.csv")) as f:
    rows = list(csv.DictReader(f))
cols = ["final_train_loss", "final_val_loss", "train_gap_pct", "val_gap_pct", "train_diff_pct", "val_diff_pct"]
with open(os.path.join(out, "results.csv"), "w") as f:
    f.write("precision,seeds," + ",".join(f"{c}_mean,{c}_sd" for c in cols) + "\n")
    for p in precs:
        sel = [r for r in rows if r["precision"] == p]
        stats = [mean_sd([float(r[c]) for r in sel]) for c in cols]
        f.write(f"{p},{len(sel)}," + ",".join(f"{m:.5f},{sd:.5f}" for m, sd in stats) + "\n")

# per-step relative gap of the training loss to fp32's, |L - L_fp32| / L_fp32 in %, mean over seeds
# (a column of "nan" for a run that was skipped)
n = min(len(runs[(p, s)][0]) for p in precs for s in seeds)
with open(os.path.join(out, "gap.csv"), "w") as f:
    f.write("step,fp8_tile_gap_pct,fp8_tensor_gap_pct,fp32_alt_gap_pct\n")
    for i in range(n):
        g = []
        for p in ("fp8-tile", "fp8-tensor", "fp32-alt"):
            if p not in precs:
                g.append("nan")
                continue
            g.append("%.5f" % (sum(100 * abs(runs[(p, s)][0][i] - runs[("fp32", s)][0][i]) / runs[("fp32", s)][0][i]
                                   for s in seeds) / len(seeds)))
        f.write(f"{i + 1},{','.join(g)}\n")

# the same gaps averaged over two phases: the steep fall of the first 60 steps, and the rest
with open(os.path.join(out, "gap.csv")) as f:
    gap = list(csv.DictReader(f))
keys = ["fp8_tile_gap_pct", "fp8_tensor_gap_pct", "fp32_alt_gap_pct"]
with open(os.path.join(out, "phases.csv"), "w") as f:
    f.write("first_step,last_step," + ",".join(keys) + "\n")
    for lo, hi in ((1, min(60, n)), (61, n)):
        sel = [r for r in gap if lo <= int(r["step"]) <= hi]
        if sel:
            f.write(f"{lo},{hi}," + ",".join("%.4f" % (sum(float(r[k]) for r in sel) / len(sel)) for k in keys) + "\n")
EOF

{
  echo "Appendix B: chapter 5's MoE model, $steps steps of 16 x 64 tokens, seeds ${seeds[*]} (mean +- sd)"
  echo "final train loss = mean of the last 25 steps; held-out loss evaluated in float32; gap = |L - L_fp32| / L_fp32"
  echo "diff = (L - L_fp32) / L_fp32, signed: > 0 is worse than float32; fp32-alt: float32 with the other sgemm"
  awk -F, 'NR > 1 { printf "%-11s train %.4f +- %.4f  held-out %.4f +- %.4f  gap: train %.2f%% +- %.2f%%, held-out %.2f%% +- %.2f%%  diff: train %+.2f%% +- %.2f%%, held-out %+.2f%% +- %.2f%%\n",
                    $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 }' "$out/results.csv"
} | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/appB/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" appB \
  runs.csv results.csv gap.csv phases.csv summary.txt

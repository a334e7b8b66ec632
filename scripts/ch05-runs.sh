#!/usr/bin/env bash
# Chapter 5's experiment (make ch5): four short pretraining runs on chapter 1's
# data, each on one thread, two at a time (the machine has two cores).
#
#   scripts/ch05-runs.sh TINYSEEK OUTDIR STEPS
#
#   dense     configs/ch05-dense.json: the dense baseline, FFN 256 wide
#   moe-free  configs/ch05-moe.json, auxiliary-loss-free balancing (bias update speed 0.01)
#   moe-aux   the same model, sequence-wise auxiliary loss (alpha 0.01), no bias update
#   moe-none  the same model, no balancing at all
#
# The MoE model activates what the dense one has (1 shared + 3 of 16 routed
# experts of 64 = 256 wide), so (a) compares them at matched *activated*
# parameters, and (b) compares the three ways of balancing the same model.
# Each run writes OUTDIR/NAME/{metrics.csv,expert_load.csv,...}; this script
# then writes OUTDIR/params.csv, OUTDIR/balance.csv and OUTDIR/summary.txt
# (both tables, from the runs' own CSV files and `tinyseek info`), and the load
# matrices OUTDIR/NAME/load_matrix.csv (expert_load.csv's per-expert columns
# only: a header row, then row i is step i+1) that figures/ch05-load-heatmap.gp draws.
set -euo pipefail
ts=${1:?usage: ch05-runs.sh TINYSEEK OUTDIR STEPS}
out=${2:?usage: ch05-runs.sh TINYSEEK OUTDIR STEPS}
steps=${3:?usage: ch05-runs.sh TINYSEEK OUTDIR STEPS}
for f in runs/ch01/data/pretrain_train.txt runs/ch01/tokenizer.json; do
  [[ -f $f ]] || { echo "ch05-runs: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
mkdir -p "$out"
common=(--data runs/ch01/data --tokenizer runs/ch01/tokenizer.json --steps "$steps" --batch 16 --seq 64
        --warmup 20 --eval-every 25 --eval-batches 4 --threads 1 --quiet)

run() {   # run NAME FLAGS...: one training run, its output in OUTDIR/NAME.log
  local name=$1; shift
  "$ts" pretrain --out "$out/$name" "${common[@]}" "$@" >"$out/$name.log" 2>&1 ||
    { echo "ch05-runs: $name failed:" >&2; tail -3 "$out/$name.log" >&2; return 1; }
  echo "ch05: $name: $(sed -n 's/^pretrain: \([0-9]* steps in [0-9.]* s\).*held-out loss \([0-9.]*\).*/\1, held-out loss \2/p' "$out/$name.log")"
}
run dense --config configs/ch05-dense.json & a=$!
run moe-free --config configs/ch05-moe.json --bias-update-speed 0.01 & b=$!
wait $a; wait $b
run moe-aux --config configs/ch05-moe.json --aux-loss-alpha 0.01 & a=$!
run moe-none --config configs/ch05-moe.json & b=$!
wait $a; wait $b

# (a) dense vs MoE at matched activated parameters
{
  echo "model,config,total_params,active_params,final_val_loss,tokens_per_s"
  for name in dense moe-free; do
    cfg=configs/ch05-${name%%-*}.json
    read -r total active < <("$ts" info "$cfg" | sed -n 's/^parameters *\([0-9]*\) total.* \([0-9]*\) activated.*/\1 \2/p')
    val=$(sed -n 's/.*held-out loss \([0-9.]*\).*/\1/p' "$out/$name.log")
    tps=$(sed -n 's/.* s, \([0-9]*\) tokens\/s.*/\1/p' "$out/$name.log")
    echo "$name,$cfg,$total,$active,$val,$tps"
  done
} >"$out/params.csv"

# (b) balancing: load statistics (a load is tokens / mean tokens per expert;
# E/K = 16/3 = 5.33 means some layer sent every token to the same 3 experts):
# the mean of the per-step maximum over the second half, the number of steps
# at full collapse, and at the last step the maximum, the minimum and the
# number of starved experts (load below 0.1)
E=$(sed -n 's/.*"n_routed_experts": *\([0-9]*\).*/\1/p' configs/ch05-moe.json)
K=$(sed -n 's/.*"num_experts_per_tok": *\([0-9]*\).*/\1/p' configs/ch05-moe.json)
{
  echo "run,final_val_loss,mean_max_load_2nd_half,steps_fully_collapsed,final_max_load,final_min_load,starved_experts_final"
  for name in moe-none moe-aux moe-free; do
    val=$(sed -n 's/.*held-out loss \([0-9.]*\).*/\1/p' "$out/$name.log")
    awk -F, -v name="$name" -v val="$val" -v half=$((steps / 2)) -v full="$E/$K" '
      BEGIN { split(full, ek, "/"); collapse = 0.999 * ek[1] / ek[2] }
      NR == 1 { next }
      { if ($1 > half) { s += $2; n++ } if ($2 >= collapse) c++; last = $0 }
      END {
        k = split(last, f, ","); starved = 0
        for (i = 4; i <= k; i++) if (f[i] < 0.1) starved++
        printf "%s,%s,%.3f,%d,%.3f,%.3f,%d\n", name, val, s / n, c, f[2], f[3], starved
      }' "$out/$name/expert_load.csv"
  done
} >"$out/balance.csv"

for name in moe-none moe-aux moe-free; do   # the loads alone (row i = step i+1), for gnuplot's matrix image
  cut -d, -f4- "$out/$name/expert_load.csv" >"$out/$name/load_matrix.csv"
done

{
  echo "(a) dense vs MoE at matched activated parameters ($steps steps of 16 x 64 tokens, one thread each)"
  column -s, -t <"$out/params.csv"
  echo
  echo "(b) balancing the same MoE model"
  column -s, -t <"$out/balance.csv"
} | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch05/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" ch05 \
  params.csv balance.csv summary.txt moe-none/expert_load.csv

#!/usr/bin/env bash
# Chapter 5's experiment (make ch5): four short pretraining runs on chapter 1's
# data, each with three seeds, each on one thread, two at a time (the machine
# has two cores).
#
#   scripts/ch05-runs.sh TINYSEEK OUTDIR STEPS [SEEDS]     (SEEDS default "1 2 3")
#
#   dense     configs/ch05-dense.json: the dense baseline, FFN 256 wide
#   moe-free  configs/ch05-moe.json, auxiliary-loss-free balancing (bias update speed 0.01)
#   moe-aux   the same model, sequence-wise auxiliary loss (alpha 0.01), no bias update
#   moe-none  the same model, no balancing at all
#
# The MoE model activates what the dense one has (1 shared + 3 of 16 routed
# experts of 64 = 256 wide), so (a) compares them at matched *activated*
# parameters, and (b) compares the three ways of balancing the same model.
# A seed S sets both the weights (--init-seed S) and the data order (--seed S);
# the four runs of one seed share both. Each run writes OUTDIR/NAME-sS/
# {metrics.csv,expert_load.csv,...} and OUTDIR/NAME-sS.log; this script then writes
#   OUTDIR/params.csv    `tinyseek info`'s parameter counts for the two configs
#                        and DeepSeek-V2/V3's (and the embedding table, vocab x hidden)
#   OUTDIR/per_seed.csv  one row per run and seed: held-out loss, load statistics
#   OUTDIR/results.csv   mean and sample sd over the seeds per run, and of the
#                        paired difference moe-free - dense (row moe-minus-dense)
#   OUTDIR/curves.csv    held-out loss by step, mean and sd over the seeds per run
#   OUTDIR/summary.txt   the tables, for reading
# and the load matrices OUTDIR/NAME-sS/load_matrix.csv (expert_load.csv's
# per-expert columns only: a header row, then row i is step i+1) that
# figures/ch05-load-heatmap.gp draws for seed 1.
set -euo pipefail
ts=${1:?usage: ch05-runs.sh TINYSEEK OUTDIR STEPS [SEEDS]}
out=${2:?usage: ch05-runs.sh TINYSEEK OUTDIR STEPS [SEEDS]}
steps=${3:?usage: ch05-runs.sh TINYSEEK OUTDIR STEPS [SEEDS]}
seeds=${4:-1 2 3}
PY=${PY3:-/usr/bin/python3}
for f in runs/ch01/data/pretrain_train.txt runs/ch01/tokenizer.json; do
  [[ -f $f ]] || { echo "ch05-runs: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
mkdir -p "$out"
common=(--data runs/ch01/data --tokenizer runs/ch01/tokenizer.json --steps "$steps" --batch 16 --seq 64
        --warmup 20 --eval-every 25 --eval-batches 4 --threads 1 --quiet)

run() {   # run NAME SEED FLAGS...: one training run, its output in OUTDIR/NAME-sSEED.log
  local name=$1 seed=$2; shift 2
  local dir=$out/$name-s$seed
  "$ts" pretrain --out "$dir" "${common[@]}" --seed "$seed" --init-seed "$seed" "$@" >"$dir.log" 2>&1 ||
    { echo "ch05-runs: $name seed $seed failed:" >&2; tail -3 "$dir.log" >&2; return 1; }
  echo "ch05: $name seed $seed: $(sed -n 's/^pretrain: \([0-9]* steps in [0-9.]* s\).*held-out loss \([0-9.]*\).*/\1, held-out loss \2/p' "$dir.log")"
}

jobs=()
for seed in $seeds; do
  jobs+=("dense $seed --config configs/ch05-dense.json"
         "moe-free $seed --config configs/ch05-moe.json --bias-update-speed 0.01"
         "moe-aux $seed --config configs/ch05-moe.json --aux-loss-alpha 0.01"
         "moe-none $seed --config configs/ch05-moe.json")
done
for ((i = 0; i < ${#jobs[@]}; i += 2)); do   # two at a time
  # shellcheck disable=SC2086
  run ${jobs[i]} & a=$!
  b=
  if ((i + 1 < ${#jobs[@]})); then
    # shellcheck disable=SC2086
    run ${jobs[i + 1]} & b=$!
  fi
  wait $a
  [[ -z $b ]] || wait $b
done

# Parameter counts, as `tinyseek info` prints them, and the embedding table
# (vocab x hidden, which it counts as activated).
{
  echo "config,file,total_params,active_params,embedding_params"
  for cfg in configs/ch05-dense.json configs/ch05-moe.json configs/published/deepseek-v3.json \
             configs/published/deepseek-v2.json; do
    info=$("$ts" info "$cfg")
    read -r total active < <(sed -n 's/^parameters *\([0-9]*\) total.* \([0-9]*\) activated.*/\1 \2/p' <<<"$info")
    emb=$(sed -n 's/^layers .*hidden \([0-9]*\),.*vocab \([0-9]*\).*/\1 \2/p' <<<"$info" | awk '{ printf "%d", $1 * $2 }')
    name=${cfg##*/}; name=${name%.json}
    echo "$name,$cfg,$total,$active,$emb"
  done
} >"$out/params.csv"

for job in "${jobs[@]}"; do   # the loads alone (row i = step i+1), for gnuplot's matrix image
  read -r name seed _ <<<"$job"
  [[ $name == moe-* ]] && cut -d, -f4- "$out/$name-s$seed/expert_load.csv" >"$out/$name-s$seed/load_matrix.csv"
done

# Per run and seed: the held-out loss, and for the MoE runs the load statistics
# (a load is tokens / mean tokens per expert; E/K = 16/3 = 5.33 means some layer
# sent every token to the same 3 experts): the mean of the per-step maximum
# over the second half, the number of steps at full collapse (max load within
# 0.1% of E/K), the first step at 90% of it, the last step with a load of 2 or
# more, and at the last step the maximum, the minimum and the number of starved
# experts (load below 0.1). Then mean and sample sd over the seeds.
E=$(sed -n 's/.*"n_routed_experts": *\([0-9]*\).*/\1/p' configs/ch05-moe.json)
K=$(sed -n 's/.*"num_experts_per_tok": *\([0-9]*\).*/\1/p' configs/ch05-moe.json)
"$PY" - "$out" "$steps" "$E" "$K" "${jobs[@]}" <<'EOF'
import csv, math, re, sys
out, steps, E, K = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
jobs = [job.split()[:2] for job in sys.argv[5:]]
full = E / K
cols = ["final_val_loss", "mean_max_load_2nd_half", "steps_fully_collapsed", "first_step_90pct_collapse",
        "last_step_load_2", "final_max_load", "final_min_load", "starved_experts_final"]
rows = []
for name, seed in jobs:
    log = open(f"{out}/{name}-s{seed}.log").read()
    val = re.search(r"held-out loss ([0-9.]+)", log).group(1)
    tps = re.search(r" s, ([0-9]+) tokens/s", log)
    r = {"run": name, "seed": seed, "final_val_loss": val, "tokens_per_s": tps.group(1) if tps else ""}
    if name.startswith("moe-"):
        load = list(csv.reader(open(f"{out}/{name}-s{seed}/expert_load.csv")))[1:]
        mx = [(int(l[0]), float(l[1])) for l in load]
        second = [m for s, m in mx if s > steps // 2]
        last = load[-1]
        r.update({
            "mean_max_load_2nd_half": f"{sum(second) / len(second):.3f}",
            "steps_fully_collapsed": sum(1 for _, m in mx if m >= 0.999 * full),
            "first_step_90pct_collapse": next((s for s, m in mx if m >= 0.9 * full), 0),
            "last_step_load_2": max((s for s, m in mx if m >= 2), default=0),
            "final_max_load": f"{float(last[1]):.3f}",
            "final_min_load": f"{float(last[2]):.3f}",
            "starved_experts_final": sum(1 for v in last[3:] if float(v) < 0.1),
        })
    else:
        r.update({c: "" for c in cols[1:]})
    rows.append(r)
with open(f"{out}/per_seed.csv", "w", newline="") as f:
    w = csv.DictWriter(f, ["run", "seed"] + cols + ["tokens_per_s"])
    w.writeheader()
    w.writerows(rows)

def stats(xs):
    xs = [float(x) for x in xs if x != ""]
    if not xs:
        return ["", "", "", ""]
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return [f"{m:.4f}", f"{sd:.4f}", f"{min(xs):g}", f"{max(xs):g}"]
order = list(dict.fromkeys(r["run"] for r in rows))
loss = {(r["run"], r["seed"]): float(r["final_val_loss"]) for r in rows}
seeds = list(dict.fromkeys(r["seed"] for r in rows))
with open(f"{out}/results.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["run", "seeds"] + [f"{c}_{s}" for c in cols for s in ("mean", "sd", "min", "max")])
    for name in order:
        rs = [r for r in rows if r["run"] == name]
        w.writerow([name, len(rs)] + [x for c in cols for x in stats([r[c] for r in rs])])
    # paired by seed: the MoE model minus the dense one, each seed's pair sharing weights' seed and data order
    diff = [loss[("moe-free", s)] - loss[("dense", s)] for s in seeds]
    w.writerow(["moe-minus-dense", len(diff)] + stats(diff) + [""] * (4 * (len(cols) - 1)))

# held-out loss curves: mean and sd over the seeds, per run
curves = {}
for r in rows:
    for m in csv.DictReader(open(f"{out}/{r['run']}-s{r['seed']}/metrics.csv")):
        if m["val_loss"] not in ("", "nan"):
            curves.setdefault(r["run"], {}).setdefault(int(m["step"]), []).append(float(m["val_loss"]))
all_steps = sorted({s for c in curves.values() for s in c})
with open(f"{out}/curves.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["step"] + [f"{n}_{s}" for n in order for s in ("mean", "sd")])
    for s in all_steps:
        line = [s]
        for n in order:
            m, sd = stats(curves[n].get(s, []))[:2]
            line += [m, sd]
        w.writerow(line)
EOF

{
  echo "Chapter 5: $steps steps of 16 x 64 tokens, one thread each, seeds: $seeds"
  echo "(tokens/s was measured with two runs sharing the machine: not a speed benchmark)"
  echo
  echo "parameters (tinyseek info)"
  column -s, -t <"$out/params.csv"
  echo
  echo "per run and seed"
  column -s, -t <"$out/per_seed.csv"
  echo
  echo "mean, sd, min, max over the seeds"
  column -s, -t <"$out/results.csv"
} | tee "$out/summary.txt"

# The summaries the chapter quotes, into the tracked results/ch05/ (scripts/book.py
# reads them there; make book-md then puts this run's numbers in book.md).
bash scripts/save-results.sh "$out" ch05 \
  params.csv per_seed.csv results.csv curves.csv summary.txt

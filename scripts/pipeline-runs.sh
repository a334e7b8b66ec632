#!/usr/bin/env bash
# make pipeline: DeepSeek-R1's recipe end to end in miniature (R1 §2.3 and §2.4),
# with the commands of chapters 7 to 9, on chapter 1's data:
#
#   base      chapter 7's pretrained base (configs/ch07-base.json: chapter 5's MLA + DeepSeekMoE), read
#             from runs/ch07/base, not pretrained again
#   sft       R1 stage 1, cold start: SFT of base on the cold-start pairs (sft_train.jsonl); chapter 7's
#             runs/ch07/seedS/sft when chapter 7 ran it with the same steps (the same command)
#   grpo1     R1 stage 2, reasoning RL: GRPO from sft with chapter 8's flags; chapter 8's
#             runs/ch08/seedS/grpo when chapter 8 ran it with the same steps and flags from that sft
#   rssft     R1 stage 3: rejection sampling from grpo1 on the RL prompts (right, clean,
#             distinct samples), then SFT of the BASE model on those + the cold-start pairs
#   grpo2     R1 stage 4: a second GRPO stage, from rssft (reasoning prompts only here)
#   student   the distillation student: chapter 9's pretrained student base (configs/ch09-student.json,
#             dense GQA), read from runs/ch09/student-base
#   distill   R1 §2.4: SFT of student on grpo2's rejection-sampled responses (sequence level)
#   kd        optional (KD=1): logit-level distillation from grpo2 on the same pairs (tinyseek distill)
#
# Needs make ch7 and make ch9 first (and so ch8), and says so when their models are missing.
# Each seed's post-training chain is one job, and each evaluation of a model read
# from another chapter another; scripts/pool.sh runs them two at a time, one
# thread each, longest first. Every model is evaluated the way chapter 8 evaluates
# (greedy and sampled pass@1, format rate, length, by difficulty) on the test set:
# the two pretrained models with the question template (the bare question, as their
# pretraining text asks it; R1-Zero's prompt gives them no answer at all, chapter 8),
# the others with r1. The evaluations keep every scored sample (the comparisons
# below need each problem's pass rate), which chapters 7 and 8's evaluations do
# not, so they are made here.
#
#   scripts/pipeline-runs.sh TINYSEEK OUTDIR
#
# Sizes come from the environment (make pipeline passes its PIPE_* variables):
#   SEEDS SFT_STEPS STEPS (of each GRPO stage) MU GROUP PROMPTS LR BETA
#   RL_MIN_DIFFICULTY RS_PROMPTS (per difficulty) RS_SAMPLES DISTILL_STEPS KD EVAL_PROBLEMS (per
#   difficulty) EVAL_SAMPLES MAX_NEW TEMPERATURE; CH7, CH8, CH9: the chapters' run folders.
# Writes OUTDIR/seedS/STAGE/ (checkpoints), OUTDIR/seedS/STAGE.csv (evaluations) and
# STAGE.samples.jsonl (every scored sample), OUTDIR/seedS/rs{1,2}.jsonl (the kept samples),
# OUTDIR/times.csv and OUTDIR/seedS/times.csv (seconds per step run here), OUTDIR/reused.csv
# and OUTDIR/seedS/reused.csv (the stages read from another chapter: its folder and the
# seconds its log gives), then scripts/pipeline-table.py's results.csv, by_difficulty.csv,
# per_seed.csv, compare.csv, run.csv, sizes.csv and summary.txt.
set -euo pipefail
ts=${1:?usage: pipeline-runs.sh TINYSEEK OUTDIR}
out=${2:?usage: pipeline-runs.sh TINYSEEK OUTDIR}
: "${SEEDS:=2}" "${SFT_STEPS:=300}"
: "${STEPS:=100}" "${MU:=2}" "${GROUP:=8}" "${PROMPTS:=8}" "${LR:=1e-4}" "${BETA:=0.04}" "${RL_MIN_DIFFICULTY:=3}"
: "${RS_PROMPTS:=250}" "${RS_SAMPLES:=8}" "${DISTILL_STEPS:=$SFT_STEPS}" "${KD:=1}"
: "${EVAL_PROBLEMS:=100}" "${EVAL_SAMPLES:=16}" "${MAX_NEW:=96}" "${TEMPERATURE:=0.6}"
export SEEDS SFT_STEPS STEPS MU GROUP PROMPTS LR BETA RL_MIN_DIFFICULTY RS_PROMPTS RS_SAMPLES \
  DISTILL_STEPS KD EVAL_PROBLEMS EVAL_SAMPLES MAX_NEW TEMPERATURE
data=${DATA:-runs/ch01/data}
tok=runs/ch01/tokenizer.json
ch7=${CH7:-runs/ch07}
ch8=${CH8:-runs/ch08}
ch9=${CH9:-runs/ch09}
for f in "$data"/pretrain_train.txt "$data"/sft_train.jsonl "$data"/sft_test.jsonl "$data"/rl_train.jsonl "$data"/test.jsonl "$tok"; do
  [[ -f $f ]] || { echo "pipeline-runs: $f is missing (make ch1 writes it)" >&2; exit 2; }
done
[[ $SEEDS =~ ^[1-9][0-9]*$ ]] || { echo "pipeline-runs: SEEDS must be a positive integer, not '$SEEDS'" >&2; exit 2; }
# The two pretrained models are the chapters' own: chapter 7's base, chapter 9's student.
base=$ch7/base
student=$ch9/student-base
for f in "$base/model.safetensors" "$ch7/pretrain.log" "$ch7/run.csv"; do
  [[ -f $f ]] || { echo "pipeline-runs: $f is missing: make ch7 first (the pipeline starts from chapter 7's base model)" >&2; exit 2; }
done
for f in "$student/model.safetensors" "$ch9/pretrain.log"; do
  [[ -f $f ]] || { echo "pipeline-runs: $f is missing: make ch9 first (the pipeline distils into chapter 9's student)" >&2; exit 2; }
done

csvget() {   # csvget FILE COLUMN: the column's value in the CSV's first row ("" when absent)
  python3 -c 'import csv, sys; print(next(csv.DictReader(open(sys.argv[1])), {}).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null || true
}
seconds_in() {   # seconds_in LOG: the "N steps in S s" of a training log's last line
  sed -n 's/.* steps in \([0-9.]*\) s.*/\1/p' "$1" | tail -1
}
same() {   # same A B: two settings equal as numbers
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) == float(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null
}
PRETRAIN_STEPS=$(csvget "$ch7/run.csv" pretrain_steps)
STUDENT_STEPS=$(sed -n 's/^pretrain: \([0-9]*\) steps.*/\1/p' "$ch9/pretrain.log")
export PRETRAIN_STEPS STUDENT_STEPS
# Chapter 7's cold start is this pipeline's stage 1 when chapter 7 ran the same command (its
# SFT steps, on chapter 1's data); chapter 8's GRPO arm is stage 2 when, moreover, chapter 8
# ran it from those models with this run's steps and flags (and after them).
reuse_sft=0
if [[ $data == runs/ch01/data ]] && same "$(csvget "$ch7/run.csv" sft_steps)" "$SFT_STEPS"; then reuse_sft=1; fi
reuse_grpo=0
if (( reuse_sft )) && [[ -f $ch8/run.csv ]]; then
  reuse_grpo=1
  for kv in steps:$STEPS mu:$MU group:$GROUP prompts:$PROMPTS lr:$LR beta:$BETA rl_min_difficulty:$RL_MIN_DIFFICULTY \
            max_new:$MAX_NEW; do
    same "$(csvget "$ch8/run.csv" "${kv%%:*}")" "${kv#*:}" || reuse_grpo=0
  done
fi
mkdir -p "$out"
start=$(date +%s)
echo "stage,seconds" >"$out/times.csv"
{ echo "stage,source,seconds"
  echo "pretrain,$ch7,$(seconds_in "$ch7/pretrain.log")"
  echo "pretrain-student,$ch9,$(seconds_in "$ch9/pretrain.log")"; } >"$out/reused.csv"

# RL prompts: rl_train.jsonl's problems of difficulty >= RL_MIN_DIFFICULTY (chapter 8's choice).
python3 - "$data/rl_train.jsonl" "$RL_MIN_DIFFICULTY" >"$out/rl_prompts.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if json.loads(line)["difficulty"] >= int(sys.argv[2]):
        sys.stdout.write(line)
PY
[[ -s $out/rl_prompts.jsonl ]] || { echo "pipeline-runs: no RL prompts of difficulty >= $RL_MIN_DIFFICULTY" >&2; exit 2; }

step() {   # step DIR NAME COMMAND...: run, log to DIR/NAME.log, time it into DIR/times.csv, stop on failure
  local dir=$1 name=$2; shift 2
  local t0; t0=$(date +%s.%N)
  "$@" >"$dir/$name.log" 2>&1 ||
    { echo "pipeline-runs: $dir: $name failed:" >&2; tail -3 "$dir/$name.log" >&2; return 1; }
  echo "$name,$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" >>"$dir/times.csv"
}

chain() {   # chain SEED: every post-training stage of one seed, in order
  local s=$1 d=$out/seed$1
  local sft=(--batch 16 --warmup $((SFT_STEPS / 15 + 1)) --eval-every 25 --seed "$s" --threads 1 --quiet)
  local rl=(--train "$out/rl_prompts.jsonl" --test "$data"/test.jsonl --group "$GROUP" --prompts "$PROMPTS" --mu "$MU" --lr "$LR"
            --min-lr "$LR" --beta "$BETA" --clip-low 0.2 --clip-high 0.28 --max-new "$MAX_NEW" --eval-every 0 --eval-problems 0
            --seed "$s" --sample-seed "$s" --threads 1 --quiet)
  local rs=(--data "$data" --limit "$RS_PROMPTS" --samples "$RS_SAMPLES" --max-new "$MAX_NEW" --temperature "$TEMPERATURE"
            --threads 1 --quiet)
  # Stage 1: cold start (chapter 7's, or made here and evaluated here).
  if [[ ${sft_dir[$s]} == "$d/sft" ]]; then
    step "$d" sft "$ts" sft --init "$base" --data "$data" --out "$d/sft" --steps "$SFT_STEPS" "${sft[@]}"
    ev "$s" sft "$d/sft" r1
  fi
  # Stage 2: reasoning-oriented RL (chapter 8's, or made here).
  if [[ ${grpo_dir[$s]} == "$d/grpo1" ]]; then
    step "$d" grpo1 "$ts" grpo --init "${sft_dir[$s]}" --template r1 --out "$d/grpo1" --steps "$STEPS" "${rl[@]}"
    ev "$s" grpo1 "$d/grpo1" r1
  fi
  # Stage 3: rejection sampling from the RL model, then SFT of the base model on it + the cold-start pairs.
  step "$d" rejection1 "$ts" rejection-sample --model "${grpo_dir[$s]}" --seed "$((s + 100))" --out "$d/rs1.jsonl" "${rs[@]}"
  cat "$data"/sft_train.jsonl "$d/rs1.jsonl" >"$d/rssft_train.jsonl"
  step "$d" rssft "$ts" sft --init "$base" --train "$d/rssft_train.jsonl" --test "$data"/sft_test.jsonl --out "$d/rssft" \
    --steps "$SFT_STEPS" "${sft[@]}"
  ev "$s" rssft "$d/rssft" r1
  # Stage 4: RL again, from the stage-3 model.
  step "$d" grpo2 "$ts" grpo --init "$d/rssft" --template r1 --out "$d/grpo2" --steps "$STEPS" "${rl[@]}"
  ev "$s" grpo2 "$d/grpo2" r1
  # Distillation (R1 §2.4): the final model writes the data, the student is fine-tuned on it.
  step "$d" rejection2 "$ts" rejection-sample --model "$d/grpo2" --seed "$((s + 200))" --out "$d/rs2.jsonl" "${rs[@]}"
  [[ -s $d/rs2.jsonl ]] || { echo "pipeline-runs: seed $s: rejection sampling kept none of grpo2's samples: nothing to distil" >&2; return 1; }
  step "$d" distill "$ts" sft --init "$student" --train "$d/rs2.jsonl" --test "$data"/sft_test.jsonl --out "$d/distill" \
    --steps "$DISTILL_STEPS" --batch 16 --warmup $((DISTILL_STEPS / 15 + 1)) --eval-every 25 --seed "$s" --threads 1 --quiet
  ev "$s" distill "$d/distill" r1
  if [[ $KD == 1 ]]; then
    step "$d" kd "$ts" distill --teacher "$d/grpo2" --init "$student" --train "$d/rs2.jsonl" --test "$data"/sft_test.jsonl \
      --out "$d/kd" --steps "$DISTILL_STEPS" --batch 16 --warmup $((DISTILL_STEPS / 15 + 1)) --eval-every 25 --seed "$s" \
      --threads 1 --quiet
    ev "$s" kd "$d/kd" r1
  fi
  echo "pipeline: seed $s done ($(( $(date +%s) - start )) s)"
}

ev() {   # ev SEED NAME MODEL TEMPLATE: chapter 8's evaluation, keeping every scored sample
  local s=$1 d=$out/seed$1
  step "$d" "eval-$2" "$ts" evaluate --model "$3" --template "$4" --label "$2" --problems "$data"/test.jsonl \
    --limit "$EVAL_PROBLEMS" --samples "$EVAL_SAMPLES" --max-new "$MAX_NEW" --temperature "$TEMPERATURE" --seed "$s" \
    --threads 1 --quiet --csv "$d/$2.csv" --samples-out "$d/$2.samples.jsonl"
}

# Which stages each seed reads from chapters 7 and 8, and where (seedS/reused.csv).
declare -A sft_dir grpo_dir
for ((s = 1; s <= SEEDS; s++)); do
  d=$out/seed$s
  mkdir -p "$d"
  echo "stage,seconds" >"$d/times.csv"
  echo "stage,source,seconds" >"$d/reused.csv"
  sft_dir[$s]=$d/sft
  grpo_dir[$s]=$d/grpo1
  if (( reuse_sft )) && [[ -f $ch7/seed$s/sft/model.safetensors && -f $ch7/seed$s/sft.log ]]; then
    sft_dir[$s]=$ch7/seed$s/sft
    echo "sft,${sft_dir[$s]},$(seconds_in "$ch7/seed$s/sft.log")" >>"$d/reused.csv"
    if (( reuse_grpo )) && [[ -f $ch8/seed$s/grpo.log && -f $ch8/seed$s/grpo/model.safetensors && $ch8/seed$s/grpo/model.safetensors -nt ${sft_dir[$s]}/model.safetensors ]]; then
      grpo_dir[$s]=$ch8/seed$s/grpo
      echo "grpo1,${grpo_dir[$s]},$(seconds_in "$ch8/seed$s/grpo.log")" >>"$d/reused.csv"
    fi
  fi
  echo "pipeline: seed $s: cold start ${sft_dir[$s]}, GRPO 1 ${grpo_dir[$s]}"
done

# The jobs, longest first: each seed's chain, then the evaluations of the models read from
# the other chapters (independent of the chains). One thread each, two at a time.
source scripts/pool.sh
for ((s = 1; s <= SEEDS; s++)); do pool_run "seed $s: chain" chain $s; done
for ((s = 1; s <= SEEDS; s++)); do
  pool_run "seed $s: eval-base" ev $s base "$base" question
  pool_run "seed $s: eval-student" ev $s student "$student" question
  [[ ${sft_dir[$s]} == "$out/seed$s/sft" ]] || pool_run "seed $s: eval-sft" ev $s sft "${sft_dir[$s]}" r1
  [[ ${grpo_dir[$s]} == "$out/seed$s/grpo1" ]] || pool_run "seed $s: eval-grpo1" ev $s grpo1 "${grpo_dir[$s]}" r1
done
pool_wait || { echo "pipeline-runs: stopped (see above)" >&2; exit 1; }
elapsed=$(( $(date +%s) - start ))
python3 scripts/pipeline-table.py "$out" "$elapsed" | tee "$out/summary.txt"

# The summaries chapter 10 quotes, into the tracked results/pipeline/.
bash scripts/save-results.sh "$out" pipeline \
  results.csv by_difficulty.csv per_seed.csv compare.csv run.csv sizes.csv summary.txt

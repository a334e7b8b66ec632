#!/usr/bin/env bash
# Seed corpus for the fuzz harnesses, from the project's own files.
# usage: fuzz/make-seeds.sh TINYSEEK_BINARY FUZZ_DIR
set -euo pipefail
cli=$1; out=$2/seeds; work=$2/seed-work
rm -rf "$out" "$work"
mkdir -p "$out"/{safetensors,config,tokenizer,trainstate,checkpoint} "$work"
for f in configs/*.json configs/published/*.json tests/reference/configs/*.json fuzz/tiny-*.json; do
  cp "$f" "$out/config/$(echo "${f%.json}" | tr / -).json"   # names made unique by their folder
done
"$cli" data --out "$work/data" --pretrain 200 --pretrain-test 20 --sft 20 --sft-test 10 --rl 20 --test 20 --seed 1 --digits 2 >/dev/null
"$cli" tokenizer train --input "$work/data/pretrain_train.txt" --vocab-size 300 --out "$work/tokenizer.json" >/dev/null
cp "$work/tokenizer.json" "$out/tokenizer/"
for name in tiny-config tiny-moe-config; do
  "$cli" pretrain --config "fuzz/$name.json" --tokenizer "$work/tokenizer.json" --data "$work/data" \
    --out "$work/$name" --steps 2 --stop-after 1 --warmup 1 --batch 2 --seq 16 --eval-every 0 --quiet --threads 1 >/dev/null
  cp "$work/$name/model.safetensors" "$out/safetensors/$name-model.safetensors"
  cp "$work/$name/training_state.safetensors" "$out/safetensors/$name-state.safetensors"
  # checkpoint harness input: [u32 LE length of config.json][config.json][model.safetensors]
  python3 - "$work/$name/config.json" "$work/$name/model.safetensors" "$out/checkpoint/$name.bin" <<'PY'
import struct, sys
cfg = open(sys.argv[1], 'rb').read()
st = open(sys.argv[2], 'rb').read()
open(sys.argv[3], 'wb').write(struct.pack('<I', len(cfg)) + cfg + st)
PY
done
# The trainstate harness loads into fuzz/tiny-config.json's model.
cp "$work/tiny-config/training_state.safetensors" "$out/trainstate/"
echo "fuzz seeds: $(find "$out" -type f | wc -l) files in $out"

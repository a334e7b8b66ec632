#!/usr/bin/env python3
"""Exact-answer accuracy of generated completions on RL prompts (chapter 1's rl_*.jsonl).

usage: answer-accuracy.py PROMPTS.jsonl COMPLETIONS.txt
COMPLETIONS.txt is `tinyseek generate --prompts ...` output: one line per prompt,
prompt followed by the completion. Prints "accuracy K/N (P%)", and the share of
completions in the <think>...</think><answer>...</answer> format.
"""
import json
import re
import sys

if len(sys.argv) != 3:
    sys.exit("usage: answer-accuracy.py PROMPTS.jsonl COMPLETIONS.txt")
try:
    refs = [json.loads(line)["answer"] for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
    outs = open(sys.argv[2], encoding="utf-8", errors="replace").read().splitlines()
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"answer-accuracy: {e}")
if len(outs) < len(refs):
    sys.exit(f"answer-accuracy: {sys.argv[2]} has {len(outs)} lines for {len(refs)} prompts")
fmt = re.compile(r"<think>.*?</think>\s*<answer>(.*?)</answer>\s*$")
correct = formatted = 0
for ref, out in zip(refs, outs):
    m = fmt.search(out)
    formatted += bool(m)
    correct += bool(m and m.group(1).strip() == ref)
n = len(refs)
print(f"accuracy {correct}/{n} ({100.0 * correct / n:.0f}%), well-formed {formatted}/{n}")

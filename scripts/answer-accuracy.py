#!/usr/bin/env python3
"""A base model's arithmetic, in the plain equation form of chapter 1's pretraining text.

A pretrained model has never seen the <think>/<answer> format (chapter 1 keeps
it out of the pretraining text), so it is asked the way its text asks, in one
of two forms:
  direct  `What is 347+28?` from test.jsonl becomes the prompt `347+28=`, and
          the number the model writes next (greedy) must be the answer;
  worked  the prompt is `347+28:`, the opening of the text's worked notes
          (`347+28: 7+8=15 carry 1 ; ... ; so 347+28=375`), and the line must
          end with `so 347+28=ANSWER`: the steps are the model's business.

usage: answer-accuracy.py prompts [--worked] TEST.jsonl N DIFFICULTY   first N problems of that difficulty,
                                                                      one prompt a line
       answer-accuracy.py score [--worked] TEST.jsonl N COMPLETIONS...  score `tinyseek generate` output (one
                                                                      file per difficulty, in the order the
                                                                      prompts were written)
Prints one line per difficulty, "difficulty D: K/N (P%)", and the total.
"""
import json
import re
import sys

QUESTION = re.compile(r"^What is (\d+)([-+*])(\d+)\?$")


def load(path):
    try:
        rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
        return [(r["prompt"], r["answer"], int(r["difficulty"])) for r in rows]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"answer-accuracy: {path}: {e}")


def equation(prompt, worked=False):
    m = QUESTION.match(prompt)
    if not m:
        sys.exit(f"answer-accuracy: unexpected prompt {prompt!r} (expected 'What is A+B?')")
    return f"{m.group(1)}{m.group(2)}{m.group(3)}" + (":" if worked else "=")


def right(prompt, answer, completion, worked):
    """Is the completion (the prompt, then what the model wrote) right?"""
    if worked:
        return completion.rstrip().endswith(f"so {equation(prompt)[:-1]}={answer}")
    m = re.match(r"\d+", completion[len(equation(prompt)):])
    return bool(m and m.group(0) == answer)


def first(rows, n, d):
    return [r for r in rows if r[2] == d][:n]


def main(argv):
    worked = len(argv) > 2 and argv[2] == "--worked"
    if worked:
        argv = argv[:2] + argv[3:]
    if len(argv) >= 5 and argv[1] == "prompts":
        for prompt, _, _ in first(load(argv[2]), int(argv[3]), int(argv[4])):
            print(equation(prompt, worked))
        return
    if len(argv) < 5 or argv[1] != "score":
        sys.exit(__doc__.strip().split("\n\n")[1])
    rows, n = load(argv[2]), int(argv[3])
    levels = sorted({r[2] for r in rows})
    if len(argv) - 4 != len(levels):
        sys.exit(f"answer-accuracy: {len(levels)} difficulties in {argv[2]}, {len(argv) - 4} completion files")
    total = n_right = 0
    for d, path in zip(levels, argv[4:]):
        want = first(rows, n, d)
        try:
            outs = open(path, encoding="utf-8", errors="replace").read().splitlines()
        except OSError as e:
            sys.exit(f"answer-accuracy: {e}")
        if len(outs) < len(want):
            sys.exit(f"answer-accuracy: {path} has {len(outs)} lines for {len(want)} prompts")
        k = 0
        for (prompt, answer, _), out in zip(want, outs):
            eq = equation(prompt, worked)
            if not out.startswith(eq):
                sys.exit(f"answer-accuracy: {path}: line {out!r} does not start with its prompt {eq!r}")
            k += right(prompt, answer, out, worked)
        print(f"difficulty {d}: {k}/{len(want)} ({100.0 * k / len(want):.0f}%)")
        total += len(want)
        n_right += k
    print(f"all: {n_right}/{total} ({100.0 * n_right / total:.0f}%)")


main(sys.argv)

#!/usr/bin/env python3
"""A base model's arithmetic, in the plain equation form of chapter 1's pretraining text.

A pretrained model has seen the <think>/<answer> format rarely if at all
(chapter 1 keeps it out of the pretraining text, or nearly), so it is asked the
way its text asks, in one of two forms:
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
       answer-accuracy.py steps TEST.jsonl N COMPLETIONS...            the worked completions' column steps
                                                                      against the scratchpad of chapter 1
Prints one line per difficulty, "difficulty D: K/N (P%)", and the total; `steps` prints
"difficulty D: first column K/N (P%), every column K/N (P%)": the first step (the ones
column) right, and the steps before "; so" exactly the scratchpad, every column right.
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


def scratchpad(prompt):
    """The column steps of chapter 1's worked notes (src/data/tasks.c, task-scratchpad)."""
    m = QUESTION.match(prompt)
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    steps, carry = [], 0
    for _ in range(len(str(max(a, b)))):
        x, y = a % 10, b % 10
        if op == "+":
            total = x + y + carry
            steps.append(f"{x}+{y}" + (f"+{carry}" if carry else "") + f"={total} carry {total // 10}")
            carry = total // 10
        elif op == "-":
            borrow = int(x < y + carry)
            steps.append(("1" if borrow else "") + f"{x}-{y}" + (f"-{carry}" if carry else "") +
                         f"={x + 10 * borrow - y - carry} borrow {borrow}")
            carry = borrow
        else:
            product = x * b + carry
            steps.append(f"{x}*{b}" + (f"+{carry}" if carry else "") + f"={product} carry {product // 10}")
            carry = product // 10
        a, b = a // 10, (b // 10 if op != "*" else b)
    return steps


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
    if len(argv) < 5 or argv[1] not in ("score", "steps"):
        sys.exit(__doc__.strip().split("\n\n")[1])
    rows, n = load(argv[2]), int(argv[3])
    levels = sorted({r[2] for r in rows})
    if len(argv) - 4 != len(levels):
        sys.exit(f"answer-accuracy: {len(levels)} difficulties in {argv[2]}, {len(argv) - 4} completion files")
    total = n_right = n_first = 0
    steps = argv[1] == "steps"
    if steps:
        worked = True
    for d, path in zip(levels, argv[4:]):
        want = first(rows, n, d)
        try:
            outs = open(path, encoding="utf-8", errors="replace").read().splitlines()
        except OSError as e:
            sys.exit(f"answer-accuracy: {e}")
        if len(outs) < len(want):
            sys.exit(f"answer-accuracy: {path} has {len(outs)} lines for {len(want)} prompts")
        k = k_first = 0
        for (prompt, answer, _), out in zip(want, outs):
            eq = equation(prompt, worked)
            if not out.startswith(eq):
                sys.exit(f"answer-accuracy: {path}: line {out!r} does not start with its prompt {eq!r}")
            if steps:
                want_steps = scratchpad(prompt)
                got = out[len(eq):].split(" ; so ")[0].strip().split(" ; ")
                k_first += got[0] == want_steps[0]
                k += got == want_steps
            else:
                k += right(prompt, answer, out, worked)
        n = len(want)
        if steps:
            print(f"difficulty {d}: first column {k_first}/{n} ({100.0 * k_first / n:.0f}%), "
                  f"every column {k}/{n} ({100.0 * k / n:.0f}%)")
        else:
            print(f"difficulty {d}: {k}/{n} ({100.0 * k / n:.0f}%)")
        total += n
        n_right += k
        n_first += k_first
    if steps:
        print(f"all: first column {n_first}/{total} ({100.0 * n_first / total:.0f}%), "
              f"every column {n_right}/{total} ({100.0 * n_right / total:.0f}%)")
    else:
        print(f"all: {n_right}/{total} ({100.0 * n_right / total:.0f}%)")


main(sys.argv)

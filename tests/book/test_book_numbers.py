#!/usr/bin/python3
"""The book generator's numbers from runs (scripts/book.py, "Numbers from runs") and
scripts/save-results.sh, each on a small tree in a temporary folder:

  * placeholders take their values from results/ (a cell, a format spec, mean ± sd,
    arithmetic, another row, a table's rows, text files, JSON, {{fact}});
  * book.py fails, naming the chapter line, on a measured number with no source, on a
    placeholder whose file, row or column does not exist, on a stale book.md (also
    after a rerun changed a value in results/), and on a pending chapter whose
    results arrived; it passes what is not measured (code, comments, facts);
  * save-results.sh copies only from runs/NAME, replaces results/NAME/ whole, and
    refuses a run that lacks a file.

    /usr/bin/python3 tests/book/test_book_numbers.py      (make book-selftest)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOK = os.path.join(ROOT, "scripts", "book.py")
SAVE = os.path.join(ROOT, "scripts", "save-results.sh")

RESULTS = {
    "ch01/sweep.csv": "vocab,merges,tokens_per_line,bytes_per_token\n265,0,103.456,1.0000\n473,208,48.876,2.1167\n",
    "ch01/corpus.csv": "lines,bytes,tokens\n20000,1952198,947510\n",
    "ch07/results.csv": "model,seeds,pass1_mean,pass1_sd,loss\nbase,3,0.0050,0.0050,1.20\n"
                        "sft,3,0.0270,0.0120,0.95\nrs,3,0.0770,0.0200,0.93\n",
    "ch02/unigram.txt": "3.57\n",
    "ch02/summary.txt": "step 800 loss 0.8171\nunigram entropy 3.5712 nats\n",
    "ch06/run.json": '{"seconds": 458, "kept": {"mean": 7.7}}',
}


class BookNumbers(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tinyseek-booknum-")
        os.makedirs(os.path.join(self.dir, "chapters"))
        for name, text in RESULTS.items():
            self.write(os.path.join("results", name), text)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def chapter(self, body, name="01-probe.md"):
        self.write(os.path.join("chapters", name), "# Probe\n\n" + textwrap.dedent(body))

    def book(self, *args):
        r = subprocess.run([sys.executable, BOOK, "--root", self.dir, *args],
                           capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr

    def built(self):
        rc, out = self.book()
        self.assertEqual(rc, 0, out)
        with open(os.path.join(self.dir, "book.md"), encoding="utf-8") as f:
            return f.read()

    def fails(self, pattern, *args):
        rc, out = self.book(*args)
        self.assertEqual(rc, 1, f"book.py must fail (/{pattern}/), printed:\n{out}")
        self.assertRegex(out, pattern)
        return out

    # ---- values ------------------------------------------------------------------------
    def test_values(self):
        self.chapter("""\
            A line takes {{ch01/sweep.csv[merges=0] {tokens_per_line:.1f}}} tokens, then {{ch01/sweep.csv[last] {tokens_per_line:.1f}}}
            after {{ch01/sweep.csv[last] {merges}}} merges ({{ch01/sweep.csv[#1] {bytes_per_token}}} bytes per token).
            The text is {{ch01/corpus.csv {tokens:,}}} tokens, {{ch01/corpus.csv {bytes / 1e6:.2f}}} MB.
            SFT: {{ch07/results.csv[model=sft] {pass1_mean:.3f} ± {pass1_sd:.3f}}}, rs minus sft
            {{ch07/results.csv[model=rs] {loss - row(model='sft').loss:+.2f}}} nats.
            Entropy {{ch02/unigram.txt}} and {{ch02/summary.txt[/unigram entropy ([0-9.]+)/] {g1:.2f}}}; {{ch06/run.json {seconds}}} s,
            kept {{ch06/run.json {kept.mean:.1f}}}; V3 reports {{fact 85–90%}}.
            """)
        book = self.built()
        self.assertIn("A line takes 103.5 tokens, then 48.9\nafter 208 merges (1.0000 bytes per token).", book)
        self.assertIn("The text is 947,510 tokens, 1.95 MB.", book)
        self.assertIn("SFT: 0.027 ± 0.012, rs minus sft\n\u22120.02 nats.", book)
        self.assertIn("Entropy 3.57 and 3.57; 458 s,\nkept 7.7; V3 reports 85–90%.", book)
        self.assertNotIn("{{", book)

    def test_rows_table(self):
        self.chapter("""\
            | model | pass@1 |
            |---|---|
            {{rows ch07/results.csv | {model} | {pass1_mean:.3f} ± {pass1_sd:.3f} |}}
            {{rows ch07/results.csv[model=rs] | {model} again | {pass1_mean:.2f} |}}
            """)
        book = self.built()
        self.assertIn("|---|---|\n| base | 0.005 ± 0.005 |\n| sft | 0.027 ± 0.012 |\n| rs | 0.077 ± 0.020 |\n"
                      "| rs again | 0.08 |\n", book)

    def test_rerun_needs_only_book_md(self):
        self.chapter("Loss {{ch07/results.csv[model=sft] {loss}}}.\n")
        self.assertIn("Loss 0.95.", self.built())
        self.write("results/ch07/results.csv", RESULTS["ch07/results.csv"].replace("0.95", "0.91"))
        self.fails(r"book.md is stale: run make book-md", "--check")
        self.assertIn("Loss 0.91.", self.built())
        rc, out = self.book("--check")
        self.assertEqual(rc, 0, out)

    # ---- what counts as measured -----------------------------------------------------------
    def test_unsourced_decimal(self):
        self.chapter("Intro.\n\nThe loss falls to 0.817 nats.\n")
        out = self.fails(r"chapters/01-probe.md:5: '0\.817' is a measured number with no source")
        self.assertRegex(out, r"1 measured number with no source")
        # book-md still writes the book (make book leaves a readable one), and --check fails too
        self.assertTrue(os.path.exists(os.path.join(self.dir, "book.md")), "book.md not written")
        self.fails(r"chapters/01-probe.md:5: '0\.817' is a measured number with no source", "--check")

    def test_unsourced_kinds(self):
        for text, number in [("about 12% faster", "12%"), ("42/100 right", "42/100"),
                             ("pass@1 0.005 ± 0.005 here", "0.005 ± 0.005"), ("spread ± 3 nats", "± 3"),
                             ("a gap of 0.31 % here", "0.31 %")]:
            with self.subTest(text=text):
                self.chapter(f"We saw {text}.\n")
                self.fails(rf"chapters/01-probe.md:3: '{number}' is a measured number with no source")

    def test_results_table_cells(self):
        self.chapter("""\
            | model | pass@1 | steps |
            |---|---|---|
            | sft | {{ch07/results.csv[model=sft] {pass1_mean:.3f}}} | 300 |
            | 1×128 scales | {{ch07/results.csv[model=rs] {pass1_mean:.3f}}} | {{fact 250}} |
            """)
        self.fails(r"chapters/01-probe.md:5: '300' is a measured number with no source")
        # the same table without placeholders is not a results table: integers are not checked
        self.chapter("""\
            | model | steps |
            |---|---|
            | sft | 300 |
            """)
        self.built()

    def test_not_measured(self):
        self.chapter("""\
            Code: `loss 0.817`, <!-- 0.5 --> [a link](../x/v1.2.md), DeepSeek-V2.5, §3.1.2, 1.2.3,
            and {{fact 85–90%}} from the V3 report.

            ```
            loss 0.817 ± 0.01, 12%
            ```

            <!-- book: facts (the split is a design choice) -->
            | hash | share |
            |---|---|
            | 0–199 | 20% |
            A share of 5.5% too.

            After a blank line the facts block is over.

            <!-- a note to the editor
            over several lines, 0.817 and 12%
            -->
            """)
        book = self.built()
        self.assertNotIn("book: facts", book)
        self.chapter("Jinja's own `{{` and `{{ch07/x.csv {y}}}` stay as written.\n")
        self.assertIn("Jinja's own `{{` and `{{ch07/x.csv {y}}}` stay as written.", self.built())
        self.chapter("<!-- book: facts -->\nfirst 0.5\n\nthen 0.25 here\n")
        self.fails(r"chapters/01-probe.md:6: '0\.25' is a measured number")
        self.chapter("<!-- a comment\n0.5 -->\nthen 0.25 here\n")
        self.fails(r"chapters/01-probe.md:5: '0\.25' is a measured number")

    # ---- placeholders that do not resolve -----------------------------------------------------
    def test_bad_placeholders(self):
        cases = [
            ("{{ch07/nope.csv[model=sft] {loss}}}", r":3: no such file results/ch07/nope\.csv"),
            ("{{ch07/results.csv[model=sft] {los}}}", r":3: results/ch07/results\.csv: no column 'los' \(columns: model, seeds"),
            ("{{ch07/results.csv[model=grpo] {loss}}}", r":3: results/ch07/results\.csv\[model=grpo\]: no row matches"),
            ("{{ch07/results.csv[modl=sft] {loss}}}", r":3: results/ch07/results\.csv\[modl=sft\]: no column 'modl'"),
            ("{{ch07/results.csv[seeds=3] {loss}}}", r":3: results/ch07/results\.csv\[seeds=3\]: 3 rows match"),
            ("{{ch07/results.csv {loss}}}", r":3: results/ch07/results\.csv has 3 rows: say which"),
            ("{{ch07/results.csv[model=sft] {model:.2f}}}", r":3: .*'sft', not a number"),
            ("{{ch07/results.csv[model=sft]}}", r":3: .*which value\?"),
            ("{{ch07/results.csv[model=sft] {__import__('os')}}}", r":3: .*only column names"),
            ("{{../secret.csv {x}}}", r":3: '\.\./secret\.csv': a results file is named relative to results/"),
            ("{{ch07/results.csv[model=sft] {loss}", r":3: a '\{\{' is never closed"),
            ("{{ch02/summary.txt[/no such line ([0-9]+)/]}}", r":3: results/ch02/summary\.txt: /no such line"),
            ("{{ch01/sweep.csv[#3] {merges}}}", r":3: results/ch01/sweep\.csv\[#3\]: it has rows #1 to #2"),
        ]
        for text, pattern in cases:
            with self.subTest(text=text):
                self.chapter(text + "\n")
                self.fails(r"chapters/01-probe\.md" + pattern)

    # ---- chapters whose results have not arrived -------------------------------------------------
    def test_pending(self):
        self.chapter("<!-- book: numbers pending ch05 -- typed by hand -->\n\nLoss 0.817 and 12%.\n",
                     "05-probe.md")
        self.chapter("Fine.\n")
        rc, out = self.book()
        self.assertEqual(rc, 0, out)
        self.assertIn("2 hand-typed numbers in chapters waiting for results/ch05/", out)
        rc, out = self.book("--numbers")
        self.assertIn("chapters/05-probe.md:5: 0.817   (pending results/ch05/)", out)
        with open(os.path.join(self.dir, "book.md"), encoding="utf-8") as f:
            self.assertNotIn("numbers pending", f.read())
        self.write("results/ch05/params.csv", "name,params\ndense,1\n")
        out = self.fails(r"chapters/05-probe.md:3: results/ch05/ exists now, so this chapter's numbers must come from it")
        self.assertRegex(out, r"chapters/05-probe.md:5: '0\.817' is a measured number with no source")
        self.fails(r"results/ch05/ exists now", "--check")

    def test_resolve_for_doxygen(self):
        self.chapter("Loss {{ch07/results.csv[model=sft] {loss}}}.\n\\snippet src/x.c name\n\n```\n{{x}}\n```\n")
        rc, out = self.book("--resolve", os.path.join(self.dir, "chapters", "01-probe.md"))
        self.assertEqual(rc, 0, out)
        self.assertEqual(out, "# Probe\n\nLoss 0.95.\n\\snippet src/x.c name\n\n```\n{{x}}\n```\n")


class SaveResults(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tinyseek-saveres-")
        os.makedirs(os.path.join(self.dir, "scripts"))
        shutil.copy(SAVE, os.path.join(self.dir, "scripts"))
        os.makedirs(os.path.join(self.dir, "runs", "ch09", "a"))
        for rel in ("s.csv", "a/m.csv", "checkpoint.bin"):
            with open(os.path.join(self.dir, "runs", "ch09", rel), "w") as f:
                f.write(rel + "\n")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def save(self, run, *files):
        return subprocess.run(["bash", os.path.join(self.dir, "scripts", "save-results.sh"), run, "ch09", *files],
                              capture_output=True, text=True, cwd=self.dir)

    def listing(self):
        top = os.path.join(self.dir, "results")
        return sorted(os.path.relpath(os.path.join(d, f), top) for d, _, fs in os.walk(top) for f in fs)

    def test_copies_and_replaces(self):
        os.makedirs(os.path.join(self.dir, "results", "ch09"))
        with open(os.path.join(self.dir, "results", "ch09", "stale.csv"), "w") as f:
            f.write("old\n")
        r = self.save("runs/ch09", "s.csv", "a/m.csv")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.listing(), ["ch09/a/m.csv", "ch09/s.csv"])

    def test_other_folder_left_alone(self):
        shutil.copytree(os.path.join(self.dir, "runs", "ch09"), os.path.join(self.dir, "trial"))
        r = self.save("trial", "s.csv")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is not runs/ch09: results/ch09/ left as it is", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "results", "ch09")))

    def test_missing_file(self):
        r = self.save("runs/ch09", "s.csv", "nope.csv")
        self.assertEqual(r.returncode, 2)
        self.assertIn("runs/ch09/nope.csv is missing", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "results", "ch09")))


if __name__ == "__main__":
    unittest.main(verbosity=1)

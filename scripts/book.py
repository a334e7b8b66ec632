#!/usr/bin/python3
"""Assemble chapters/*.md into book.md.

    scripts/book.py                          write book.md from chapters/
    scripts/book.py --check                  exit 1 if book.md differs from a fresh build
    scripts/book.py --numbers                list the measured numbers with no source
    scripts/book.py --resolve CHAPTER        the chapter with its placeholders replaced (Doxygen)
    scripts/book.py --chapters DIR --out FILE

What it does, in filename order over DIR/*.md:

  * takes each chapter's first `# ` heading as its title and builds a table of
    contents linking to an anchor placed before the chapter: numbered chapters
    (01-name.md) first, then the appendices (B-name.md: a capital letter and a
    dash; the ASCII order puts them after the digits) in a list of their own;
  * replaces every line of the exact form `\\snippet PATH NAME` (outside fenced
    code blocks) with a fenced code block holding the lines between the two
    marker lines of PATH for NAME (the marker lines excluded, other markers
    nested inside dropped, blank lines at either end and common indentation
    removed), captioned with the file and line range and linked to the file.
    A marker line contains `//! [NAME]`, or is exactly `// [NAME]`: headers
    use the second form, since Doxygen would take a `//!` line there for the
    documentation of the next declaration. This is the same directive Doxygen
    reads, so a chapter renders both here and in `make docs`;
  * replaces every line of the exact form `\\includedoc PATH` (Doxygen's
    directive too) with the Markdown text of PATH, for tables that a script
    generates (figures/ch04-absorption.md);
  * refuses a snippet that prints the body of an exercise's function (the
    EX_FUNCTION of EX_SOURCE in exercises/*/exercise.mk): a chapter gives the
    equations and the function's declaration, `make solution EX=NAME` the
    solution;
  * rewrites relative links and images (`](../figures/x.svg)`) so they still
    resolve from the folder book.md is written to, and warns (without failing)
    about a relative link whose target does not exist;
  * replaces every {{...}} placeholder (outside code blocks and `code spans`) with a
    number read from results/, and fails on a measured number that has none (below).

Numbers from runs (DESIGN §8). runs/ is not in git; each chapter's make target
ends by copying the small summaries its prose quotes from runs/NAME/ into the
tracked results/NAME/ (scripts/save-results.sh), and the chapters quote them:

    {{ch01/vocab-sweep.csv[last] {merges}}}                         a cell, as written in the file
    {{ch01/vocab-sweep.csv[merges=0] {tokens_per_problem:.1f}}}      formatted (Python's format spec)
    {{ch07/results.csv[model=sft] {pass1_mean:.3f} ± {pass1_sd:.3f}}}  mean ± sd: any text around fields
    {{ch01/corpus.csv {bytes / 1e6:.2f}}} MB, {{ch01/corpus.csv {tokens:,}}} tokens
    {{ch04/summary.csv[attention=mla] {final_val_loss - row(attention='mha').final_val_loss:+.3f}}}
                                arithmetic, and a column of another row of the same file
    {{ch02/unigram.txt}}                                           a text file, whole (stripped)
    {{ch02/summary.txt[/unigram entropy ([0-9.]+)/] {g1}}}          a text file, a regex's groups
    {{rows ch06/results.csv | {run} | {loss_mean:.3f} ± {loss_sd:.3f} |}}
                                a line of its own: the template once per row (a table's body);
                                [KEY=VALUE] after the file keeps only the rows that match
    {{fact 85–90%}}                                                not measured here: printed as is

  FILE is relative to results/: .csv (a header row), .json (an object, or a list
  of objects = rows), anything else is text. [ROW] picks one row: KEY=VALUE (several,
  comma-separated; numbers compare as numbers), first, last or #N; a file of one row
  needs none. Each {EXPR} or {EXPR:SPEC} of the template is a column name, a number,
  + - * /, abs(), or row(KEY=VALUE).column; a bare column is printed exactly as the
  file writes it, a SPEC or arithmetic formats it as a number, and a minus sign is
  printed as U+2212, as the chapters write it. A missing file, row or column, or an
  ambiguous row, is an error naming the chapter line.

  A measured number is, in a chapter's prose and tables (not in code blocks, `code
  spans`, <!-- comments -->, link targets or placeholders): a decimal number
  (3.57, 1.95 MB; not a section or version: §3.1.2, V2.5), a percentage (12%, 0.31 %),
  a count out of a total (42/100), a ± expression (0.11 ± 0.16%), and, in a results
  table (one that holds a placeholder), any number in a body cell other than the
  first column (the row's label). Each must be a placeholder. A figure from a paper,
  a setting or a piece of arithmetic is written {{fact ...}}, or the block (a
  paragraph or a table, up to the next blank line) follows a line
  `<!-- book: facts ... -->`. Integers outside results tables are not checked: write
  the ones a run measures (208 merges) as placeholders too.

  A chapter whose run outputs are not in results/ yet holds a line
  `<!-- book: numbers pending NAME ... -->`: its hand-typed numbers are listed by
  `scripts/book.py --numbers` instead of failing; once results/NAME/ exists the
  line is an error, so the chapter is converted when its first results arrive.
  (book-md still writes book.md in both cases, then exits 1; book-check fails.)
  A rerun then only needs `make book-md`: the same placeholders take the new values.

Any problem (a missing file, a missing or unclosed marker, a chapter without a
title, a placeholder that does not resolve, a measured number with no source)
ends with one line naming the chapter file and line, and exit status 1.
Paths in `\\snippet` are relative to the repository root (--root).
Standard library only; run with Debian's /usr/bin/python3.
"""
import argparse
import ast
import csv
import io
import json
import os
import re
import sys
import tempfile

SNIPPET_RE = re.compile(r"^\\snippet[ \t]+(\S+)[ \t]+(\S+)[ \t]*$")
INCLUDEDOC_RE = re.compile(r"^\\includedoc[ \t]+(\S+)[ \t]*$")
FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
APPENDIX_RE = re.compile(r"^[A-Z]-")
TITLE_RE = re.compile(r"^# +(.+?)[ \t]*#*[ \t]*$")
# Markdown links/images with a relative target: ](target) or ](target "title")
LINK_RE = re.compile(r"(\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
IMG_SRC_RE = re.compile(r"(<img\b[^>]*?\bsrc=\")([^\"]+)(\")")
MARKER_ANY_RE = re.compile(r"^\s*//!?\s*\[[^\]]+\]\s*$")

LANGS = {".c": "c", ".h": "c", ".cu": "cuda", ".py": "python", ".sh": "bash",
         ".mk": "make", ".json": "json", ".gp": "gnuplot", ".md": "markdown", ".dot": "dot",
         ".txt": "text"}


class BookError(Exception):
    """A problem in a chapter; the message is the one line to print."""


def anchor_for(chapter_file):
    """Stable anchor id from the chapter's file name: 01-tokens-and-tasks.md -> ch-01-tokens-and-tasks."""
    stem = os.path.splitext(os.path.basename(chapter_file))[0]
    return "ch-" + re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")


def dedent(lines):
    """Remove the common leading whitespace of non-blank lines (tabs count as one character)."""
    widths = [len(l) - len(l.lstrip(" \t")) for l in lines if l.strip()]
    cut = min(widths) if widths else 0
    return [l[cut:] if l.strip() else "" for l in lines]


def extract_snippet(root, path, name, where):
    """Return (first_line, last_line, lines) of the region marked //! [name] in path."""
    full = os.path.join(root, path)
    if not os.path.isfile(full):
        raise BookError(f"{where}: \\snippet {path} {name}: no such file {path}")
    with open(full, encoding="utf-8") as f:
        text = f.read().split("\n")
    if text and text[-1] == "":
        text.pop()
    marker = f"//! [{name}]"
    plain = f"// [{name}]"        # the header form (see the module's docstring)
    hits = [i for i, line in enumerate(text) if marker in line or line.strip() == plain]
    if not hits:
        raise BookError(f"{where}: \\snippet {path} {name}: no line in {path} contains '{marker}' "
                        f"(or is exactly '{plain}')")
    if len(hits) == 1:
        raise BookError(f"{where}: \\snippet {path} {name}: marker '{marker}' opened at {path}:{hits[0] + 1} "
                        f"is never closed")
    if len(hits) > 2:
        at = ", ".join(str(h + 1) for h in hits)
        raise BookError(f"{where}: \\snippet {path} {name}: marker '{marker}' appears {len(hits)} times in "
                        f"{path} (lines {at}); expected exactly 2")
    start, end = hits[0] + 1, hits[1] - 1          # 0-based, inclusive
    body = text[start:end + 1]
    if not any(l.strip() for l in body):
        raise BookError(f"{where}: \\snippet {path} {name}: the markers at {path}:{hits[0] + 1} and "
                        f"{hits[1] + 1} enclose no code")
    # Drop other regions' marker lines nested inside this one (they are noise to a reader).
    body = [l for l in body if not MARKER_ANY_RE.match(l)]
    # Blank lines at either end (a header's marker kept a line away from a declaration).
    while body and not body[0].strip():
        body.pop(0)
        start += 1
    while body and not body[-1].strip():
        body.pop()
        end -= 1
    return start + 1, end + 1, [l.rstrip() for l in dedent(body)]


def load_exercise_solution_module(root):
    """scripts/exercise-solution.py, which finds a function's definition in a C file."""
    import importlib.util
    path = os.path.join(root, "scripts", "exercise-solution.py")
    spec = importlib.util.spec_from_file_location("exercise_solution", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def exercise_bodies(root):
    """{source path: [(exercise, function, first, last)]}: for every exercises/NAME/exercise.mk, the
    lines (1-based, inclusive) of the body of EX_FUNCTION in EX_SOURCE, which no chapter may print."""
    home = os.path.join(root, "exercises")
    if not os.path.isdir(home):
        return {}
    found = {}
    finder = None
    for ex in sorted(os.listdir(home)):
        mk = os.path.join(home, ex, "exercise.mk")
        if not os.path.isfile(mk):
            continue
        with open(mk, encoding="utf-8") as f:
            text = f.read()
        src = re.search(r"^EX_SOURCE\s*:?=\s*(\S+)", text, re.M)
        fn = re.search(r"^EX_FUNCTION\s*:?=\s*(\S+)", text, re.M)
        where = os.path.relpath(mk, root)
        if not src or not fn:
            raise BookError(f"{where}: expected EX_SOURCE := FILE and EX_FUNCTION := NAME lines")
        src, fn = src.group(1), fn.group(1)
        full = os.path.join(root, src)
        if not os.path.isfile(full):
            raise BookError(f"{where}: EX_SOURCE {src}: no such file")
        with open(full, encoding="utf-8") as f:
            code = f.read()
        finder = finder or load_exercise_solution_module(root)
        try:
            a, b = finder.find_definition(code, fn, src)
        except SystemExit as e:
            raise BookError(f"{where}: {e}")
        clean = finder.blank_comments_and_strings(code)
        m = re.search(r"\b%s\s*\(" % re.escape(fn), clean[a:b])
        brace = clean.find("{", a + m.end())
        first_line = code.count("\n", 0, a) + 1
        open_line = code.count("\n", 0, brace) + 1
        close_line = code.count("\n", 0, b - 1) + 1
        lo, hi = open_line + 1, close_line - 1
        if lo > hi:                     # a body on one line: all of the definition is the solution
            lo, hi = first_line, close_line
        found.setdefault(os.path.normpath(src), []).append((ex, fn, lo, hi))
    return found


WARNINGS = []


def rewrite_link(target, chapter_dir, out_dir, root, where=None):
    """Make a chapter-relative link target relative to the output file's folder.
    A target that does not exist is kept (rewritten) and reported as a warning."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return target
    path, hash_, frag = target.partition("#")
    if not path:
        return target
    resolved = os.path.normpath(os.path.join(chapter_dir, path))
    if where and not os.path.exists(resolved):
        WARNINGS.append(f"{where}: link target {path} does not exist "
                        f"(relative to {os.path.relpath(chapter_dir, root)}/: "
                        f"{os.path.relpath(resolved, root)})")
    rel = os.path.relpath(resolved, out_dir)
    return rel.replace(os.sep, "/") + hash_ + frag


# ---- numbers from runs -----------------------------------------------------------------
# (the rules are in the module's docstring, under "Numbers from runs")

RESULTS_DIR = "results"
FACT_RE = re.compile(r"^fact(?:\s+(.*))?$", re.S)
ROWS_RE = re.compile(r"^rows\s+(.*)$", re.S)
FACTS_BLOCK_RE = re.compile(r"^\s*<!--\s*book:\s*facts\b[^>]*-->\s*$")
PENDING_RE = re.compile(r"<!--\s*book:\s*numbers pending\s+([\w.-]+)/?(?:\s[^>]*)?-->")
COMMENT_RE = re.compile(r"<!--.*?-->")
CODE_SPAN_RE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK_TARGET_RE = re.compile(r"\]\([^)]*\)")
# What the checker calls a measured number (see the docstring): a decimal number
# (not a section or version number: no letter, §, dot or digit-dot next to it), a
# percentage, a count out of a total (42/100), or a ± expression (0.11 ± 0.16%).
MEASURED_RE = re.compile(r"(?:\d[\d.,]*\s*)?±\s*\d[\d.,]*(?:\s?%)?"
                         r"|(?<![\w§.])\d+\.\d+(?![\d.]*\d)(?:\s?%)?"
                         r"|(?<![\w§.])\d+(?:,\d{3})*\s?%"
                         r"|(?<![\w/.])\d+/\d+(?![\w/])")
TABLE_NUMBER_RE = re.compile(r"(?<![\w§.])\d[\d,]*(?:\.\d+)?")


class Cell(str):
    """A value read from a results file: printed as written there unless a format spec
    or arithmetic asks for a number."""


def as_number(v, what):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    s = str(v).strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        raise BookError(f"{what} is '{s}', not a number") from None


class ResultFiles:
    """results/ files read once per build; paths in placeholders are relative to ROOT/results."""

    def __init__(self, root):
        self.root = root
        self.cache = {}
        self.used = set()

    def path(self, name, where):
        if os.path.isabs(name) or ".." in name.split("/") or not name:
            raise BookError(f"{where}: '{name}': a results file is named relative to {RESULTS_DIR}/, "
                            f"e.g. ch07/results.csv")
        return os.path.join(self.root, RESULTS_DIR, name)

    def load(self, name, where):
        if name in self.cache:
            return self.cache[name]
        full = self.path(name, where)
        if not os.path.isfile(full):
            raise BookError(f"{where}: no such file {RESULTS_DIR}/{name} (the make target of its chapter "
                            f"copies it there: run it, or fix the name)")
        self.used.add(name)
        with open(full, encoding="utf-8") as f:
            text = f.read()
        ext = os.path.splitext(name)[1]
        if ext == ".csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            if not rows:
                raise BookError(f"{where}: {RESULTS_DIR}/{name} has no data rows")
            data = ("rows", rows)
        elif ext == ".json":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise BookError(f"{where}: {RESULTS_DIR}/{name}: not JSON ({e})") from None
            data = ("rows", obj) if isinstance(obj, list) else ("one", obj)
        else:
            data = ("text", text)
        self.cache[name] = data
        return data


def split_placeholder(text, where):
    """'FILE[SELECTOR] TEMPLATE' -> (FILE, SELECTOR or None, TEMPLATE)."""
    m = re.match(r"([^\s\[]+)", text)
    if not m:
        raise BookError(f"{where}: {{{{{text}}}}}: expected {{{{FILE[ROW] TEMPLATE}}}}, e.g. "
                        f"{{{{ch07/results.csv[model=sft] {{sampled_pass1_mean:.3f}}}}}}")
    name, rest = m.group(1), text[m.end():]
    sel = None
    if rest.startswith("["):
        close = rest.find("/]", 2) + 1 if rest.startswith("[/") else rest.find("]")
        if close <= 0:
            raise BookError(f"{where}: {{{{{text}}}}}: the row selector '[' is never closed")
        sel, rest = rest[1:close].strip(), rest[close + 1:]
    return name, sel, rest.strip()


def select_rows(rows, sel, name, where, one):
    """The rows of a CSV/JSON list that SELECTOR picks: KEY=VALUE[, KEY=VALUE], first, last, or #N."""
    if sel is None or sel == "":
        if one and len(rows) != 1:
            raise BookError(f"{where}: {RESULTS_DIR}/{name} has {len(rows)} rows: say which, e.g. "
                            f"{name}[{first_key(rows)}=...], {name}[first], {name}[last]")
        return rows
    if sel == "first":
        return rows[:1]
    if sel == "last":
        return rows[-1:]
    if re.fullmatch(r"#\d+", sel):
        i = int(sel[1:])
        if not 1 <= i <= len(rows):
            raise BookError(f"{where}: {RESULTS_DIR}/{name}[{sel}]: it has rows #1 to #{len(rows)}")
        return [rows[i - 1]]
    conds = []
    for part in sel.split(","):
        k, eq, v = part.partition("=")
        k, v = k.strip(), v.strip()
        if not eq or not k:
            raise BookError(f"{where}: {RESULTS_DIR}/{name}[{sel}]: expected KEY=VALUE (comma-separated), "
                            f"first, last or #N")
        if k not in rows[0]:
            raise BookError(f"{where}: {RESULTS_DIR}/{name}[{sel}]: no column '{k}' (columns: "
                            f"{', '.join(rows[0])})")
        conds.append((k, v))

    def same(a, b):
        a = str(a).strip()
        if a == b:
            return True
        try:
            return float(a) == float(b)
        except ValueError:
            return False
    hit = [r for r in rows if all(same(r.get(k, ""), v) for k, v in conds)]
    if not hit:
        raise BookError(f"{where}: {RESULTS_DIR}/{name}[{sel}]: no row matches")
    if one and len(hit) > 1:
        raise BookError(f"{where}: {RESULTS_DIR}/{name}[{sel}]: {len(hit)} rows match; add a KEY=VALUE")
    return hit


def first_key(rows):
    return next(iter(rows[0]), "KEY") if rows and isinstance(rows[0], dict) else "KEY"


def evaluate(expr, row, rows, name, where):
    """The value of a field's expression: column names, numbers, + - * /, abs(), and
    row(KEY=VALUE, ...).column for another row of the same file."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise BookError(f"{where}: {{{expr}}}: not an expression over {RESULTS_DIR}/{name}'s columns") from None

    def look(obj, key):
        if isinstance(obj, dict):
            if key in obj:
                v = obj[key]
                return Cell(v) if isinstance(v, str) else v
            cols = ", ".join(obj) if obj else "none"
            raise BookError(f"{where}: {RESULTS_DIR}/{name}: no column '{key}' (columns: {cols})")
        raise BookError(f"{where}: {{{expr}}}: '{key}' of something that is not a row")

    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float, str)):
            return n.value
        if isinstance(n, ast.Name):
            return look(row, n.id)
        if isinstance(n, ast.Attribute):
            return look(ev(n.value), n.attr)
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant):
            return look(ev(n.value), str(n.slice.value))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = as_number(ev(n.operand), f"{RESULTS_DIR}/{name}: {{{expr}}}")
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            what = f"{RESULTS_DIR}/{name}: {{{expr}}}: an operand"
            a, b = as_number(ev(n.left), what), as_number(ev(n.right), what)
            if isinstance(n.op, ast.Add):
                return a + b
            if isinstance(n.op, ast.Sub):
                return a - b
            if isinstance(n.op, ast.Mult):
                return a * b
            if b == 0:
                raise BookError(f"{where}: {RESULTS_DIR}/{name}: {{{expr}}} divides by zero")
            return a / b
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            if n.func.id == "abs" and len(n.args) == 1 and not n.keywords:
                return abs(as_number(ev(n.args[0]), f"{RESULTS_DIR}/{name}: {{{expr}}}"))
            if n.func.id == "row" and not n.args and n.keywords and isinstance(rows, list):
                sel = ", ".join(f"{k.arg}={ev(k.value)}" for k in n.keywords)
                return select_rows(rows, sel, name, where, one=True)[0]
        raise BookError(f"{where}: {{{expr}}}: only column names, numbers, + - * /, abs() and "
                        f"row(KEY=VALUE).column are allowed")
    return ev(tree)


def fill_template(template, row, rows, name, where):
    """TEMPLATE with each {EXPR} or {EXPR:SPEC} replaced; SPEC is Python's format spec
    (.3f, +.2f, ,d, .1%); a minus sign is printed as the book writes it (U+2212)."""
    out, i = [], 0
    while i < len(template):
        j = template.find("{", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        k = template.find("}", j)
        if k < 0:
            raise BookError(f"{where}: '{template}': a '{{' is never closed")
        field = template[j + 1:k]
        expr, colon, spec = field.rpartition(":") if ":" in field else (field, "", "")
        value = evaluate(expr, row, rows, name, where)
        if isinstance(value, Cell) and not spec:
            text = str(value).strip()
        else:
            num = as_number(value, f"{where}: {RESULTS_DIR}/{name}: {{{field}}}")
            try:
                text = format(num, spec)
            except ValueError as e:
                raise BookError(f"{where}: {{{field}}}: format spec '{spec}': {e}") from None
        out.append(re.sub(r"-(?=[\d.])", "\u2212", text))
        i = k + 1
    return "".join(out)


def resolve(inner, results, where):
    """The text a placeholder {{INNER}} stands for."""
    inner = inner.strip()
    f = FACT_RE.match(inner)
    if f:
        return (f.group(1) or "").strip()
    if ROWS_RE.match(inner):
        raise BookError(f"{where}: {{{{{inner}}}}}: a rows placeholder must be a line of its own")
    name, sel, template = split_placeholder(inner, where)
    kind, data = results.load(name, where)
    if kind == "text":
        if sel is None:
            if template:
                raise BookError(f"{where}: {{{{{inner}}}}}: a .txt file is quoted whole, or with "
                                f"[/REGEX/] and a template over its groups {{g1}}")
            return data.strip()
        if not (sel.startswith("/") and sel.endswith("/") and len(sel) > 1):
            raise BookError(f"{where}: {RESULTS_DIR}/{name}[{sel}]: a .txt file's selector is /REGEX/")
        m = re.search(sel[1:-1], data, re.M)
        if not m:
            raise BookError(f"{where}: {RESULTS_DIR}/{name}: /{sel[1:-1]}/ matches nothing")
        row = {f"g{i}": Cell(g or "") for i, g in enumerate(m.groups(), 1)}
        row.update({k: Cell(v or "") for k, v in m.groupdict().items()})
        return fill_template(template or "{g1}", row, None, name, where)
    if not template:
        raise BookError(f"{where}: {{{{{inner}}}}}: which value? add a template, e.g. {{column:.3f}}")
    if kind == "one":
        if sel:
            raise BookError(f"{where}: {RESULTS_DIR}/{name} holds one object: no [row] to select")
        return fill_template(template, data, None, name, where)
    row = select_rows(data, sel, name, where, one=True)[0]
    return fill_template(template, row, data, name, where)


def placeholders(line, where):
    """[(start, end, inner)] for each {{...}} of a line outside `code spans`; single braces
    inside are fields."""
    found, i = [], 0
    spans = [m.span() for m in CODE_SPAN_RE.finditer(line)]
    while True:
        a = line.find("{{", i)
        if a < 0:
            return found
        inside = [e for s, e in spans if s <= a < e]
        if inside:
            i = inside[0]
            continue
        depth, j = 0, a + 2
        while j < len(line):
            c = line[j]
            if c == "{":
                depth += 1
            elif c == "}":
                if depth:
                    depth -= 1
                elif line.startswith("}}", j):
                    break
            j += 1
        else:
            raise BookError(f"{where}: a '{{{{' is never closed on this line")
        found.append((a, j + 2, line[a + 2:j]))
        i = j + 2


def substitute(line, results, where):
    """The line with every placeholder replaced by its value, and the line with every
    placeholder removed (what the measured-number check reads)."""
    out, bare, i = [], [], 0
    for a, b, inner in placeholders(line, where):
        out.append(line[i:a])
        bare.append(line[i:a])
        out.append(resolve(inner, results, where))
        bare.append(" ")
        i = b
    out.append(line[i:])
    bare.append(line[i:])
    return "".join(out), "".join(bare)


def expand_rows(line, results, where):
    """A line that is exactly {{rows FILE[SELECTOR] TEMPLATE}}: the template once per row, or None."""
    s = line.strip()
    ps = placeholders(s, where) if s.startswith("{{rows") else []
    if len(ps) != 1 or ps[0][0] != 0 or ps[0][1] != len(s):
        return None
    m = ROWS_RE.match(ps[0][2].strip())
    if not m:
        return None
    name, sel, template = split_placeholder(m.group(1), where)
    kind, data = results.load(name, where)
    if kind != "rows":
        raise BookError(f"{where}: {{{{rows {name} ...}}}}: rows come from a .csv file or a JSON list")
    if not template:
        raise BookError(f"{where}: {{{{rows {name} ...}}}}: no template, e.g. | {{model}} | {{loss:.3f}} |")
    return [fill_template(template, r, data, name, where) for r in select_rows(data, sel, name, where, one=False)]


def unsourced_numbers(bare, in_results_table):
    """The measured numbers of a prose line with its placeholders, code spans, comments
    and link targets removed (see the docstring)."""
    s = COMMENT_RE.sub(" ", bare)
    s = CODE_SPAN_RE.sub(" ", s)
    s = LINK_TARGET_RE.sub("]", s)
    hits = [m.group(0) for m in MEASURED_RE.finditer(s)]
    if in_results_table:
        cells = s.strip().strip("|").split("|")[1:]      # the first column labels the row
        hits += [m.group(0) for c in cells for m in TABLE_NUMBER_RE.finditer(c)
                 if m.group(0) not in hits]
    return hits


def prose_blocks(lines):
    """For each line (0-based index): (in a fenced code block, in the body of a table,
    in a block after a `<!-- book: facts -->` line)."""
    info, fence, facts, table_start, comment = [], None, False, None, False
    for i, line in enumerate(lines):
        m = FENCE_RE.match(line)
        if comment:                     # inside an HTML comment of several lines: not read
            comment = "-->" not in line
            info.append((False, False, True))
            continue
        if fence is None and "<!--" in line and "-->" not in line.rsplit("<!--", 1)[1]:
            comment = True
            info.append((False, False, True))
            continue
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip()[len(m.group(1)):].strip():
                fence = None
            info.append((True, False, facts))
            continue
        if m:
            fence = m.group(1)
            info.append((True, False, facts))
            continue
        if not line.strip():
            facts = False
        if FACTS_BLOCK_RE.match(line):
            facts = True
        is_row = line.lstrip().startswith("|")
        if is_row and table_start is None:
            table_start = i
        if not is_row:
            table_start = None
        body = is_row and i >= table_start + 2          # below the header and the |---| line
        info.append((False, body, facts))
    return info


def results_tables(lines, info):
    """Indexes of the body rows of every table that holds a placeholder (a results table)."""
    rows, block = set(), []
    for i, line in enumerate(lines + [""]):
        if i < len(lines) and not info[i][0] and line.lstrip().startswith("|") \
                or i < len(lines) and block and line.strip().startswith("{{rows"):
            block.append(i)
            continue
        if block and any("{{" in lines[j] for j in block):
            rows.update(j for j in block if info[j][1])
        block = []
    return rows


def render_chapter(chapter_path, display, root, out_dir, solutions=None, results=None, unsourced=None):
    """Return (title, markdown) for one chapter. solutions: exercise_bodies(root); results:
    a ResultFiles; unsourced: a list that receives (where, number) for each measured
    number with no source (see the docstring), pending chapters included, flagged."""
    with open(chapter_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    results = results or ResultFiles(root)
    chapter_dir = os.path.dirname(os.path.abspath(chapter_path))
    pending = None
    for n, line in enumerate(lines, 1):
        p = PENDING_RE.search(line)
        if p:
            pending = p.group(1)
            if os.path.isdir(os.path.join(root, RESULTS_DIR, pending)) and unsourced is not None:
                unsourced.append((f"{display}:{n}", "!",
                                  f"{RESULTS_DIR}/{pending}/ exists now, so this chapter's numbers must come from "
                                  f"it: write them as {{{{{pending}/FILE[ROW] {{column}}}}}} placeholders and "
                                  f"delete the 'numbers pending' line"))
                pending = None
    info = prose_blocks(lines)
    table_rows = results_tables(lines, info)
    title = None
    out = []
    fence = None        # the fence string that opened the current code block
    drop_blank = False  # the blank line after a dropped note line, so none doubles
    for n, line in enumerate(lines, 1):
        where = f"{display}:{n}"
        m = FENCE_RE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip()[len(m.group(1)):].strip():
                fence = None
            out.append(line)
            continue
        if m:
            fence = m.group(1)
            out.append(line)
            continue
        if title is None:
            t = TITLE_RE.match(line)
            if t:
                title = t.group(1)
        s = SNIPPET_RE.match(line)
        if s:
            path, name = s.group(1), s.group(2)
            first, last, body = extract_snippet(root, path, name, where)
            for ex, fn, lo, hi in (solutions or {}).get(os.path.normpath(path), []):
                if first <= hi and lo <= last:
                    raise BookError(f"{where}: \\snippet {path} {name} (lines {first}–{last}) prints the body of "
                                    f"{fn}() (lines {lo}–{hi}), the solution of exercise {ex}: quote its "
                                    f"declaration from the header instead and give the equations in the text "
                                    f"(make solution EX={ex} prints the solution)")
            lang = LANGS.get(os.path.splitext(path)[1], "c")
            ticks = "```"
            while any(l.startswith(ticks) for l in body):
                ticks += "`"
            link = os.path.relpath(os.path.join(root, path), out_dir).replace(os.sep, "/")
            out.append(f"*[{path}, lines {first}–{last}]({link}#L{first}-L{last})*")
            out.append("")
            out.append(ticks + lang)
            out.extend(body)
            out.append(ticks)
            continue
        inc = INCLUDEDOC_RE.match(line)
        if inc:
            out.extend(include_doc(root, inc.group(1), where, chapter_dir, out_dir))
            continue
        if line.lstrip().startswith(("\\snippet", "\\includedoc")):
            raise BookError(f"{where}: malformed directive '{line.strip()}' "
                            f"(expected exactly: \\snippet PATH NAME or \\includedoc PATH)")
        if FACTS_BLOCK_RE.match(line) or PENDING_RE.fullmatch(line.strip()):
            drop_blank = not out or not out[-1].strip()
            continue                    # a note to the generator: not for the reader
        if drop_blank and not line.strip():
            drop_blank = False
            continue
        drop_blank = False
        rows = expand_rows(line, results, where)
        if rows is not None:
            out.extend(rows)
            continue
        line, bare = substitute(line, results, where)
        if unsourced is not None and not info[n - 1][2]:
            unsourced.extend((where, pending, x) for x in unsourced_numbers(bare, n - 1 in table_rows))
        line = LINK_RE.sub(lambda mm: mm.group(1) + rewrite_link(mm.group(2), chapter_dir, out_dir, root, where)
                           + mm.group(3), line)
        line = IMG_SRC_RE.sub(lambda mm: mm.group(1) + rewrite_link(mm.group(2), chapter_dir, out_dir, root, where)
                              + mm.group(3), line)
        out.append(line)
    if fence is not None:
        raise BookError(f"{display}: a ``` code block is opened and never closed")
    if title is None:
        raise BookError(f"{display}:1: no '# Title' heading (the first '# ' line names the chapter)")
    return title, "\n".join(out)


def resolve_only(chapter_path, display, root):
    """The chapter as written, with only its placeholders replaced (for Doxygen's input
    filter, scripts/doxygen-md.sh: Doxygen reads \\snippet itself)."""
    with open(chapter_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    info = prose_blocks(lines)
    results = ResultFiles(root)
    out = []
    for n, line in enumerate(lines, 1):
        where = f"{display}:{n}"
        if info[n - 1][0]:
            out.append(line)
            continue
        rows = expand_rows(line, results, where)
        if rows is not None:
            out.extend(rows)
            continue
        out.append(substitute(line, results, where)[0])
    return "\n".join(out)


def include_doc(root, path, where, chapter_dir, out_dir):
    """The lines of a Markdown file for \\includedoc, relative links made relative to the output file.
    Doxygen resolves PATH in EXAMPLE_PATH (the repository root), so do we."""
    full = os.path.join(root, path)
    if not os.path.isfile(full):
        raise BookError(f"{where}: \\includedoc {path}: no such file {path}")
    with open(full, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    base = os.path.dirname(full)
    return [LINK_RE.sub(lambda mm: mm.group(1) + rewrite_link(mm.group(2), base, out_dir, root, where)
                        + mm.group(3), l) for l in lines]


def build(chapters_dir, root, out_path, unsourced=None):
    """Return the whole book as a string; unsourced (a list) receives (where, pending, number)
    for every measured number without a source (render_chapter)."""
    if not os.path.isdir(chapters_dir):
        raise BookError(f"{chapters_dir}: no such folder")
    files = sorted(f for f in os.listdir(chapters_dir) if f.endswith(".md"))
    out_dir = os.path.dirname(os.path.abspath(out_path))
    parts = []
    toc = []
    solutions = exercise_bodies(root)
    results = ResultFiles(root)
    unsourced = [] if unsourced is None else unsourced
    for f in files:
        path = os.path.join(chapters_dir, f)
        display = os.path.relpath(path, root) if not os.path.relpath(path, root).startswith("..") else path
        title, text = render_chapter(path, display, root, out_dir, solutions, results, unsourced)
        anchor = anchor_for(f)
        toc.append((APPENDIX_RE.match(f) is not None, f"[{title}](#{anchor})"))
        parts.append(f'<a id="{anchor}"></a>\n\n{text}\n')
    head = ["<!-- Generated by scripts/book.py from chapters/*.md and the //! [markers] in src/.",
            "     Do not edit: change the chapters or the code, then run `make book-md`. -->",
            "",
            "# tinyseek: DeepSeek's ideas in a tiny C transformer",
            "",
            "## Contents",
            ""]
    # Chapters are numbered; appendices (B-fp8.md: a capital letter, then a dash)
    # sort after them and are listed apart, by their letter.
    chapters = [entry for is_appendix, entry in toc if not is_appendix]
    appendices = [entry for is_appendix, entry in toc if is_appendix]
    head += [f"{i + 1}. {entry}" for i, entry in enumerate(chapters)]
    if appendices:
        head += ([""] if chapters else []) + ["Appendices:", ""] + [f"- {entry}" for entry in appendices]
    if not toc:
        head += ["*(no chapters yet)*"]
    book = "\n".join(head) + "\n"
    for p in parts:
        book += "\n---\n\n" + p
    return book


def write_atomically(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".book-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description="Assemble chapters/*.md into book.md.")
    ap.add_argument("--root", default=default_root, help="repository root (snippet paths are relative to it)")
    ap.add_argument("--chapters", help="folder of NN-name.md chapters (default ROOT/chapters)")
    ap.add_argument("--out", help="output file (default ROOT/book.md)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if --out differs from what would be written")
    ap.add_argument("--numbers", action="store_true",
                    help="list every measured number with no source, in pending chapters too, and exit")
    ap.add_argument("--resolve", metavar="CHAPTER",
                    help="print CHAPTER with its placeholders replaced, nothing else changed, and exit")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    if a.resolve:
        try:
            sys.stdout.write(resolve_only(a.resolve, a.resolve, root))
        except BookError as e:
            print(f"book: {e}", file=sys.stderr)
            return 1
        except OSError as e:
            print(f"book: {e.filename}: {e.strerror}", file=sys.stderr)
            return 1
        return 0
    chapters = a.chapters or os.path.join(root, "chapters")
    out = a.out or os.path.join(root, "book.md")
    unsourced = []
    try:
        book = build(chapters, root, out, unsourced)
    except BookError as e:
        print(f"book: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"book: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    for w in WARNINGS:
        print(f"book: warning: {w}", file=sys.stderr)
    if a.numbers:
        for where, pending, x in unsourced:
            print(f"{where}: {x}" + (f"   (pending {RESULTS_DIR}/{pending}/)" if pending not in (None, "!") else ""))
        return 0
    rel_out = os.path.relpath(out, root) if not os.path.relpath(out, root).startswith("..") else out
    status = 0
    if a.check:
        try:
            with open(out, encoding="utf-8") as f:
                old = f.read()
        except FileNotFoundError:
            old = None
        if old != book:
            why = "it does not exist" if old is None else _first_difference(old, book)
            print(f"book: {rel_out} is stale: run make book-md ({why})", file=sys.stderr)
            status = 1
    else:
        # Written even when a number has no source (below): `make book` still leaves a
        # readable book, and the exit status still says what is wrong.
        write_atomically(out, book)
        n = book.count('<a id="ch-')
        print(f"book: wrote {rel_out} ({n} chapter{'s' if n != 1 else ''}, {book.count(chr(10))} lines)")
    return sources_status(unsourced) or status


def sources_status(unsourced):
    """Report the measured numbers with no source (and expired pending lines); 1 if any."""
    expired = [(where, x) for where, pending, x in unsourced if pending == "!"]
    for where, x in expired:
        print(f"book: {where}: {x}", file=sys.stderr)
    bad = [(where, x) for where, pending, x in unsourced if not pending]
    for where, x in bad:
        print(f"book: {where}: '{x}' is a measured number with no source", file=sys.stderr)
    if bad:
        print(f"book: {len(bad)} measured number{'s' if len(bad) > 1 else ''} with no source: write each as a "
              f"{{{{FILE[ROW] {{column}}}}}} placeholder over {RESULTS_DIR}/, or, if it is not measured by this "
              f"book (a paper's figure, a setting), as {{{{fact ...}}}} (scripts/book.py, 'Numbers from runs')",
              file=sys.stderr)
    if bad or expired:
        return 1
    waiting = {}
    for where, pending, x in unsourced:
        waiting[pending] = waiting.get(pending, 0) + 1
    if waiting:
        print(f"book: note: {sum(waiting.values())} hand-typed numbers in chapters waiting for "
              f"{', '.join(f'{RESULTS_DIR}/{p}/' for p in sorted(waiting))} (scripts/book.py --numbers)",
              file=sys.stderr)
    return 0


def _first_difference(old, new):
    a, b = old.split("\n"), new.split("\n")
    for i, (x, y) in enumerate(zip(a, b), 1):
        if x != y:
            return f"first difference at line {i}"
    return f"first difference at line {min(len(a), len(b)) + 1}"


if __name__ == "__main__":
    sys.exit(main())

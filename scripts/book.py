#!/usr/bin/python3
"""Assemble chapters/*.md into book.md.

    scripts/book.py                          write book.md from chapters/
    scripts/book.py --check                  exit 1 if book.md differs from a fresh build
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
    about a relative link whose target does not exist.

Any problem (a missing file, a missing or unclosed marker, a chapter without a
title) ends with one line naming the chapter file and line, and exit status 1.
Paths in `\\snippet` are relative to the repository root (--root).
Standard library only; run with Debian's /usr/bin/python3.
"""
import argparse
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


def render_chapter(chapter_path, display, root, out_dir, solutions=None):
    """Return (title, markdown) for one chapter. solutions: exercise_bodies(root)."""
    with open(chapter_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    chapter_dir = os.path.dirname(os.path.abspath(chapter_path))
    title = None
    out = []
    fence = None        # the fence string that opened the current code block
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


def build(chapters_dir, root, out_path):
    """Return the whole book as a string."""
    if not os.path.isdir(chapters_dir):
        raise BookError(f"{chapters_dir}: no such folder")
    files = sorted(f for f in os.listdir(chapters_dir) if f.endswith(".md"))
    out_dir = os.path.dirname(os.path.abspath(out_path))
    parts = []
    toc = []
    solutions = exercise_bodies(root)
    for f in files:
        path = os.path.join(chapters_dir, f)
        display = os.path.relpath(path, root) if not os.path.relpath(path, root).startswith("..") else path
        title, text = render_chapter(path, display, root, out_dir, solutions)
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
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    chapters = a.chapters or os.path.join(root, "chapters")
    out = a.out or os.path.join(root, "book.md")
    try:
        book = build(chapters, root, out)
    except BookError as e:
        print(f"book: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"book: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    for w in WARNINGS:
        print(f"book: warning: {w}", file=sys.stderr)
    rel_out = os.path.relpath(out, root) if not os.path.relpath(out, root).startswith("..") else out
    if a.check:
        try:
            with open(out, encoding="utf-8") as f:
                old = f.read()
        except FileNotFoundError:
            old = None
        if old != book:
            why = "it does not exist" if old is None else _first_difference(old, book)
            print(f"book: {rel_out} is stale: run make book-md ({why})", file=sys.stderr)
            return 1
        return 0
    write_atomically(out, book)
    n = book.count('<a id="ch-')
    print(f"book: wrote {rel_out} ({n} chapter{'s' if n != 1 else ''}, {book.count(chr(10))} lines)")
    return 0


def _first_difference(old, new):
    a, b = old.split("\n"), new.split("\n")
    for i, (x, y) in enumerate(zip(a, b), 1):
        if x != y:
            return f"first difference at line {i}"
    return f"first difference at line {min(len(a), len(b)) + 1}"


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Paste the library's own version of a function into an exercise's student file.

    scripts/exercise-solution.py SOURCE FUNCTION STUDENT > solved.c

    scripts/exercise-solution.py --print SOURCE FUNCTION

Prints STUDENT with the definition of FUNCTION replaced by the one found in
SOURCE (signature and body, as written there). `make exercise-check` uses it
to prove that an exercise's tests pass with the real code (and fail with the
stub). With --print, prints only that definition (signature and body),
headed by the file and line range: `make solution EX=NAME` shows an
exercise's solution this way, since the book never prints it. Exit 1, with
one line naming the file, if a definition is not found.
Standard library only.
"""
import re
import sys


def blank_comments_and_strings(src):
    """Same length as src, with comments, string and char literals replaced by spaces
    (newlines kept), so braces and names inside them are not seen."""
    out = list(src)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                if out[k] != "\n":
                    out[k] = " "
            i = j + 1
        elif c == "#" and (i == 0 or src[i - 1] == "\n"):
            # a preprocessor line (with continuations): not code we match on
            j = i
            while True:
                e = src.find("\n", j)
                if e < 0:
                    e = n
                    break
                if src[e - 1] != "\\":
                    break
                j = e + 1
            for k in range(i, e):
                if out[k] != "\n":
                    out[k] = " "
            i = e
        else:
            i += 1
    return "".join(out)


def find_definition(src, name, path):
    """(start, end) of the definition of `name` at file scope: from the start of
    the line holding its return type to the closing brace."""
    clean = blank_comments_and_strings(src)
    depth = 0
    for m in re.finditer(r"[{}]|\b%s\s*\(" % re.escape(name), clean):
        tok = m.group(0)
        if tok == "{":
            depth += 1
            continue
        if tok == "}":
            depth -= 1
            continue
        if depth != 0:
            continue
        # skip the parameter list, then require a body (a prototype ends with ';')
        i, paren = m.end(), 1
        while i < len(clean) and paren:
            paren += {"(": 1, ")": -1}.get(clean[i], 0)
            i += 1
        rest = clean[i:]
        body = re.match(r"\s*\{", rest)
        if not body:
            continue
        # start: the beginning of the declaration (after the previous ; } or blank line)
        start = max(clean.rfind(";", 0, m.start()), clean.rfind("}", 0, m.start()))
        start = src.find("\n", start) + 1 if start >= 0 else 0
        while start < m.start() and clean[start:src.find("\n", start) + 1].strip() == "":
            start = src.find("\n", start) + 1
        j, d = i + body.end() - 1, 0
        while j < len(clean):
            d += {"{": 1, "}": -1}.get(clean[j], 0)
            j += 1
            if d == 0:
                return start, j
        break
    sys.exit(f"exercise-solution: {path}: no definition of {name}() found")


MARKER_RE = re.compile(r"^\s*//!?\s*\[[^\]]+\]\s*$")


def print_definition(source, name):
    """The definition of name in source, headed by where it is; book markers dropped."""
    with open(source, encoding="utf-8") as f:
        lib = f.read()
    a, b = find_definition(lib, name, source)
    first = lib.count("\n", 0, a) + 1
    last = lib.count("\n", 0, b) + 1
    lines = [l for l in lib[a:b].split("\n") if not MARKER_RE.match(l)]
    sys.stdout.write(f"/* {source}, lines {first}-{last}: the library's own {name}() */\n")
    sys.stdout.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--print":
        print_definition(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) != 4:
        sys.exit("usage: exercise-solution.py SOURCE FUNCTION STUDENT\n"
                 "       exercise-solution.py --print SOURCE FUNCTION")
    source, name, student = sys.argv[1:]
    with open(source, encoding="utf-8") as f:
        lib = f.read()
    with open(student, encoding="utf-8") as f:
        stu = f.read()
    a, b = find_definition(lib, name, source)
    c, d = find_definition(stu, name, student)
    sys.stdout.write(stu[:c] + lib[a:b] + stu[d:])


if __name__ == "__main__":
    main()

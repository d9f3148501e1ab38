#!/usr/bin/env python3
"""Check that the explicit file lists in meson.build match the tree (meson cannot glob).

    python3 tools/check_meson_lists.py          # exit 1 and name what is missing or extra
    python3 tools/check_meson_lists.py --fix    # rewrite the lists in meson.build

Lists checked (each `name = [ ... ]` in meson.build, one quoted item per line):
  wschat_headers        every include/wschat/**/*.hpp
  wschat_test_sources   every tests/*.cpp and tests/unit/*.cpp except tests/single_header_*.cpp
  wschat_examples       every examples/<name>/ that has a main.cpp
  wschat_bench_sources  every bench/**/*.cpp that defines main()

Python 3 standard library only.
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MESON_BUILD = ROOT / "meson.build"
MAIN_RE = re.compile(r"\bint\s+main\s*\(")


def rel(path):
    return path.relative_to(ROOT).as_posix()


def expected_lists():
    headers = sorted(rel(p) for p in (ROOT / "include" / "wschat").rglob("*.hpp"))
    tests = sorted(
        rel(p)
        for p in [*(ROOT / "tests").glob("*.cpp"), *(ROOT / "tests" / "unit").glob("*.cpp")]
        if not p.name.startswith("single_header_")
    )
    examples = sorted(p.parent.name for p in (ROOT / "examples").glob("*/main.cpp"))
    bench = sorted(
        rel(p)
        for p in (ROOT / "bench").rglob("*.cpp")
        if MAIN_RE.search(p.read_text(encoding="utf-8", errors="replace"))
    )
    return {
        "wschat_headers": headers,
        "wschat_test_sources": tests,
        "wschat_examples": examples,
        "wschat_bench_sources": bench,
    }


def list_re(name):
    return re.compile(r"^(%s = \[)\n(.*?)^(\])" % re.escape(name), re.M | re.S)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix", action="store_true", help="rewrite the lists in meson.build")
    args = parser.parse_args(argv)

    text = MESON_BUILD.read_text(encoding="utf-8")
    problems = []
    for name, want in expected_lists().items():
        m = list_re(name).search(text)
        if not m:
            problems.append("meson.build has no list `%s = [` ... `]`" % name)
            continue
        have = re.findall(r"'([^']*)'", m.group(2))
        if args.fix:
            body = "".join("  '%s',\n" % item for item in want)
            text = text[: m.start(2)] + body + text[m.end(2) :]
            continue
        for item in sorted(set(want) - set(have)):
            problems.append("%s: missing '%s'" % (name, item))
        for item in sorted(set(have) - set(want)):
            problems.append("%s: lists '%s', which is not in the tree" % (name, item))

    if args.fix:
        MESON_BUILD.write_text(text, encoding="utf-8")
        print("meson.build lists rewritten")
        return 0 if not problems else 1
    if problems:
        for p in problems:
            print("meson.build: " + p, file=sys.stderr)
        print("fix: python3 tools/check_meson_lists.py --fix", file=sys.stderr)
        return 1
    print("meson.build lists match the tree")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Prints the files under the repository root that match glob patterns, one per line, sorted:
meson's stand-in for CMake's file(GLOB), so that meson.build lists no files by hand.

    python3 tools/list_files.py 'tests/*.cpp' 'tests/unit/*.cpp'
    python3 tools/list_files.py --defines-main 'bench/**/*.cpp'   # only files with a main()

Paths are relative to the repository root, with '/' separators. Meson runs this when it
configures, so a file added later is seen after `meson setup --reconfigure` (or any change to
a meson.build). Python 3 standard library only.
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAIN_RE = re.compile(r"\bint\s+main\s*\(")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defines-main", action="store_true",
                        help="only files that define main()")
    parser.add_argument("patterns", nargs="+", help="glob patterns ('**' for any depth)")
    args = parser.parse_args()
    found = set()
    for pattern in args.patterns:
        for path in ROOT.glob(pattern):
            if not path.is_file():
                continue
            if args.defines_main and not MAIN_RE.search(path.read_text(errors="replace")):
                continue
            found.add(path.relative_to(ROOT).as_posix())
    for name in sorted(found):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

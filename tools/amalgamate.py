#!/usr/bin/env python3
"""Generate single_include/wschat/wschat.hpp from the umbrella include/wschat/wschat.hpp.

Every `#include <wschat/...>` is replaced, recursively, by the text of that header, once per
header (its `#pragma once` dropped; the output keeps one at the top). System and Asio includes
are left as they are. The output depends only on the input files (no dates, no paths).

    python3 tools/amalgamate.py           # (re)write the single header
    python3 tools/amalgamate.py --check   # exit 1 if the committed single header is stale

Python 3 standard library only.
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INCLUDE_DIR = ROOT / "include"
UMBRELLA = "wschat/wschat.hpp"
OUTPUT = ROOT / "single_include" / "wschat" / "wschat.hpp"
STALE_MESSAGE = "single_include/wschat/wschat.hpp is stale: run python3 tools/amalgamate.py"

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*[<"](wschat/[^>"]+)[>"]')
PRAGMA_ONCE_RE = re.compile(r"^\s*#\s*pragma\s+once\b")
IF_RE = re.compile(r"^\s*#\s*if(n?def)?\b")
ENDIF_RE = re.compile(r"^\s*#\s*endif\b")

BANNER = """\
// wschat {version} — single-header edition.
//
// GENERATED FILE, DO NOT EDIT. It is produced by tools/amalgamate.py from
// include/wschat/wschat.hpp; edit the headers under include/ and run
//     python3 tools/amalgamate.py
// CI fails when this file is stale. Needs standalone Asio: compile with -DASIO_STANDALONE
// and link the threads library.
#pragma once
"""


class AmalgamationError(Exception):
    pass


def read_version():
    """The version from include/wschat/detail/config.hpp, or '' when it is not there."""
    config = INCLUDE_DIR / "wschat" / "detail" / "config.hpp"
    if not config.is_file():
        return ""
    text = config.read_text(encoding="utf-8")
    parts = []
    for name in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(r"#\s*define\s+WSCHAT_VERSION_%s\s+(\d+)" % name, text)
        if not m:
            return ""
        parts.append(m.group(1))
    return "v" + ".".join(parts)


def inline(header, seen, out, stack):
    """Append the text of `header` (a path like 'wschat/ws/frame.hpp') to `out`."""
    if header in seen:
        return
    path = INCLUDE_DIR / header
    if not path.is_file():
        raise AmalgamationError(
            "%s includes <%s>, which does not exist under include/"
            % (stack[-1] if stack else "tools/amalgamate.py", header)
        )
    seen.add(header)
    out.append("// ---- begin %s ----\n" % header)
    depth = 0
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if PRAGMA_ONCE_RE.match(line):
            continue
        if IF_RE.match(line):
            depth += 1
        elif ENDIF_RE.match(line):
            depth -= 1
        m = INCLUDE_RE.match(line)
        if m:
            if depth > 0:
                raise AmalgamationError(
                    "include/%s:%d: conditional #include <%s> cannot be inlined once; "
                    "include it unconditionally" % (header, number, m.group(1))
                )
            inline(m.group(1), seen, out, stack + ["include/" + header])
            continue
        out.append(line.rstrip() + "\n")
    out.append("// ---- end %s ----\n" % header)


def amalgamate():
    out = [BANNER.format(version=read_version()).replace("wschat  —", "wschat —")]
    inline(UMBRELLA, set(), out, [])
    return "".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed file instead of writing"
    )
    args = parser.parse_args(argv)
    try:
        text = amalgamate()
    except AmalgamationError as e:
        print("amalgamate.py: error: %s" % e, file=sys.stderr)
        return 2
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else None
        if current != text:
            print(STALE_MESSAGE, file=sys.stderr)
            return 1
        print("single_include/wschat/wschat.hpp is up to date")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUTPUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print("wrote single_include/wschat/wschat.hpp")
    return 0


if __name__ == "__main__":
    sys.exit(main())

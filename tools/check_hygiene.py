#!/usr/bin/env python3
"""Macro and ABI hygiene of the public headers (STYLE.md item 12).

Fails when a header under include/ or single_include/
  - #defines a macro whose name does not start with WSCHAT_, or
  - opens `namespace ws`, `namespace chat` or `namespace wschat` directly instead of through
    WSCHAT_BEGIN_NAMESPACE(...), which puts every name in the versioned inline namespace.

    python3 tools/check_hygiene.py

Python 3 standard library only.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFINE_RE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)")
NAMESPACE_RE = re.compile(r"^\s*(?:inline\s+)?namespace\s+(ws|chat|wschat)\b(?!\s*=)")


def main():
    problems = []
    headers = sorted(ROOT.glob("include/**/*.hpp")) + sorted(ROOT.glob("single_include/**/*.hpp"))
    for path in headers:
        name = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = DEFINE_RE.match(line)
            if m and not m.group(1).startswith("WSCHAT_"):
                problems.append("%s:%d: macro %s lacks the WSCHAT_ prefix" % (name, number, m.group(1)))
            m = NAMESPACE_RE.match(line)
            if m:
                problems.append(
                    "%s:%d: `namespace %s` bypasses the ABI namespace: use "
                    "WSCHAT_BEGIN_NAMESPACE(%s) ... WSCHAT_END_NAMESPACE" % (name, number, m.group(1), m.group(1))
                )
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print("hygiene: %d headers checked, macros prefixed, namespaces versioned" % len(headers))
    return 0


if __name__ == "__main__":
    sys.exit(main())

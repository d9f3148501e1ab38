"""The script tests' verdicts: one PASS or FAIL line per check, and the exit status at the end."""

_failures = 0


def check(ok, name, detail=""):
    """Prints PASS or FAIL (with `detail`) for the check `name`; returns `ok`."""
    global _failures
    print(("PASS " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""),
          flush=True)
    _failures += 0 if ok else 1
    return ok


def summary():
    """Prints how many checks failed; returns the exit status, 1 when any did."""
    print(f"{'FAILED' if _failures else 'OK'}: {_failures} failure(s)", flush=True)
    return 1 if _failures else 0

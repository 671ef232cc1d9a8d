"""Record the source fingerprint of every versioned unit (models, cell kinds, protocol) in tests/fingerprints.json.

`tests/test_versions.py` fails when a unit's source differs from the file under the same version. After changing
what a unit computes, bump its version (`version=` of `register_model`, `CELL_VERSIONS` / `PROTOCOL_VERSION` in
`benchmarks/versions.py`) and run this script. After a change that moves no number (a docstring, a rename), run it
with `--same-behaviour`: the new source is recorded under the old version, and the commit says why.

Usage: python scripts/fingerprints.py [--same-behaviour]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.versions import fingerprints

FILE = Path(__file__).resolve().parent.parent / "tests" / "fingerprints.json"


def stale(recorded: dict[str, dict[str, object]], current: dict[str, dict[str, object]]) -> list[str]:
    """Units whose source changed while their version did not."""
    return sorted(u for u, f in current.items()
                  if u in recorded and recorded[u]["version"] == f["version"] and recorded[u]["sha256"] != f["sha256"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--same-behaviour", action="store_true",
                    help="record changed sources under unchanged versions (the change moves no number)")
    args = ap.parse_args(argv)
    current = fingerprints()
    recorded = json.loads(FILE.read_text()) if FILE.is_file() else {}
    changed = stale(recorded, current)
    if changed and not args.same_behaviour:
        print(f"source changed under the same version: {', '.join(changed)}. Bump their versions, or pass "
              f"--same-behaviour if no result can change", file=sys.stderr)
        return 2
    FILE.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(current)} units in {FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

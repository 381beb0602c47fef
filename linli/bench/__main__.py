"""``python -m linli.bench``: run the scenarios, print JSON lines and a summary."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from .scenarios import SCENARIOS, Bench, Scale


def _pg_base() -> str | None:
    url = os.environ.get("LINLI_DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


def _summary(line: dict[str, Any]) -> str:
    if "skipped" in line:
        return f"{line['scenario']:<4} skipped: {line['skipped']}"
    held = f" held={line['held']}" if "held" in line else ""
    met = "" if "met" in line else "  (no target)"
    if "met" in line:
        met = "  MET   " if line["met"] else "  MISSED"
        met += f" [{line['target']}]"
    return (
        f"{line['scenario']:<4}{held:<12} {line['records']:>7} rec {line['seconds']:>8.3f} s "
        f"{line['records_per_s']:>10.1f} rec/s  up {line['bytes_up']:>9} B  "
        f"down {line['bytes_down']:>9} B  req {line['requests']:>4}{met}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m linli.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shrink every N (development)")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="run only these (repeatable)"
    )
    args = parser.parse_args(argv)
    chosen = args.scenario or list(SCENARIOS)
    bench = Bench(Scale.quick() if args.quick else Scale(), _pg_base())
    bench.selected = set(chosen)  # type: ignore[attr-defined]
    started = time.perf_counter()
    failures = 0
    print(f"linli bench on {bench.db_kind}{' (quick)' if args.quick else ''}", file=sys.stderr)
    try:
        for name in SCENARIOS:
            if name not in chosen:
                continue
            print(f"-- {name} ...", file=sys.stderr, flush=True)
            try:
                lines = SCENARIOS[name](bench)
            except Exception as exc:  # one broken scenario must not hide the others
                failures += 1
                lines = [{"scenario": name, "db": bench.db_kind, "error": repr(exc)[:500]}]
                import traceback

                traceback.print_exc()
            for line in lines:
                print(json.dumps(line, ensure_ascii=False), flush=True)
                print(
                    "   " + (_summary(line) if "error" not in line else str(line)),
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        bench.close()
    print(f"total {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

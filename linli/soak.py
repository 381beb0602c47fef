"""Soak the sync protocol: many seeded chaos schedules outside pytest (``make soak``).

    python -m linli.soak --schedules 10000 [--seed 1] [--steps 20]

Each schedule ``seed`` is :func:`linli.chaos.random_schedule` (2-5 devices, random edits,
syncs and faults), played on the real server and SDK with every invariant checked after every
step and after healing. Prints ``{"schedules": N, "violations": k, "failing_seeds": [...]}``
(with the first message of each failure) and exits 1 if any schedule broke an invariant.
Re-run one failing schedule with ``--seed S --schedules 1``. ``--access-ttl 3`` makes access
tokens expire within seconds, so that the refresh paths a long soak reaches after 15 minutes are
exercised by every schedule.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections import Counter

from linli.chaos import Harness, random_schedule, run_schedule


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linli.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=100, help="how many schedules")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first schedule")
    parser.add_argument("--steps", type=int, default=20, help="at most this many steps each")
    parser.add_argument(
        "--access-ttl",
        type=int,
        metavar="S",
        help="access tokens live S seconds (default 900): a small value makes every schedule "
        "refresh its tokens, as a long soak does once the template's tokens expire",
    )
    parser.add_argument("--verbose", action="store_true", help="print each failure's traceback")
    args = parser.parse_args(argv)
    if args.access_ttl is None:
        harness = Harness.shared()
    else:
        harness = Harness({"ACCESS_TOKEN_TTL_S": args.access_ttl})
    failing: list[int] = []
    messages: dict[str, str] = {}
    stats: Counter[str] = Counter()
    started = time.perf_counter()
    for seed in range(args.seed, args.seed + args.schedules):
        n_clients, steps = random_schedule(seed, args.steps)
        try:
            world = run_schedule(harness, n_clients, steps)
            stats.update(world.stats)
        except Exception as exc:  # a violation, or a crash of the code under test
            failing.append(seed)
            messages[str(seed)] = f"{type(exc).__name__}: {exc}"[:500]
            if args.verbose:
                traceback.print_exc()
    report = {
        "schedules": args.schedules,
        "violations": len(failing),
        "failing_seeds": failing,
        "messages": messages,
        "seconds": round(time.perf_counter() - started, 1),
        "exercised": dict(sorted(stats.items())),
    }
    print(json.dumps(report, ensure_ascii=False))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())

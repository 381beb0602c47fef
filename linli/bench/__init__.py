"""The sync benchmark: a real server over real HTTP, the real SDK, one JSON line per result.

    python -m linli.bench [--quick] [--scenario S1 --scenario S3 ...]

SQLite by default; PostgreSQL when ``LINLI_DATABASE_URL`` names a PostgreSQL server (a fresh
database is created for every scenario and dropped after it). JSON lines go to stdout, a human
summary to stderr. See :mod:`linli.bench.scenarios` for what each scenario measures.
"""

from .scenarios import SCENARIOS, Bench, Scale

__all__ = ["SCENARIOS", "Bench", "Scale"]

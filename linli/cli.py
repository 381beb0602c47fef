"""``linli``: the server's commands, plus ``linli field`` (the reference field app on the SDK)
and ``linli demo`` (a living demo district).

    linli db upgrade | load-fixtures | users | devices | audit verify | serve   (server)
    linli field --help                                                          (field app)
    linli demo                                                                  (demo)
"""

from __future__ import annotations

import click

from server.cli import main

__all__ = ["main"]


def _attach() -> None:
    from client_sdk.cli import field
    from linli.demo import demo

    main.add_command(field, "field")
    main.add_command(demo, "demo")


try:
    _attach()
except ImportError as exc:  # pragma: no cover - only while a part is being built
    raise click.ClickException(f"linli is not fully installed: {exc}") from exc


if __name__ == "__main__":
    main()

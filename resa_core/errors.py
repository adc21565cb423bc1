"""One error type for bad user input, and the CLI wrapper that turns it into one line.

Every stage's ``python -m`` entry point runs through :func:`run_cli`, so a missing data root,
an unknown config key or a hostile checkpoint ends with a single ``error: ...`` line on stderr
and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input the user can fix (file, key, value); the message names it and what was expected."""


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run ``main(argv)`` and exit with its status; a :class:`UserError` becomes one stderr line."""
    try:
        status = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)

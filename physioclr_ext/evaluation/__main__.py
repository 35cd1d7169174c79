"""Entry point of ``python -m physioclr_ext.evaluation``: the core subcommands of
:mod:`physioclr_ext.evaluation.cli` plus those that drive fairseq-signals (``embed``,
``reconstruct``, ``few-shot``, ``repeated``) from :mod:`physioclr_ext.runners.evaluation_commands`.

An entry point sits above every layer: it is the one place where the core and the runners meet.
"""

import sys
from typing import List, Optional

from physioclr_ext.evaluation.cli import main
from physioclr_ext.runners import evaluation_commands


def run(argv: Optional[List[str]] = None) -> int:
    """Run one subcommand; a missing or unreadable file or a bad value (the core raises ``OSError``
    and ``ValueError`` for those) ends in one line on stderr and exit code 2, not a traceback."""
    try:
        return main(argv, extra=evaluation_commands)
    except (OSError, ValueError) as exc:
        message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"error: {message or type(exc).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())

"""Entry point of ``python -m physioclr_ext.evaluation``: the core subcommands of
:mod:`physioclr_ext.evaluation.cli` plus those that drive fairseq-signals (``embed``,
``reconstruct``, ``few-shot``, ``repeated``) from :mod:`physioclr_ext.runners.evaluation_commands`.

An entry point sits above every layer: it is the one place where the core and the runners meet.
"""

import sys

from physioclr_ext.evaluation.cli import main
from physioclr_ext.runners import evaluation_commands

if __name__ == "__main__":
    sys.exit(main(extra=evaluation_commands))

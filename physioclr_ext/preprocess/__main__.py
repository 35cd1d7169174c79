"""Entry point of ``python -m physioclr_ext.preprocess``: preprocessing, then (``--features``) the
physiological feature stage of :mod:`physioclr_ext.features` on the written output.

The two stages are chained by :func:`physioclr_ext.features.pipeline.preprocess_and_extract`
(features may import preprocessing; ``physioclr_ext.preprocess`` never imports ``physioclr_ext.features``):
it hands the preprocessing workers a record hook that computes each record's features in the same pass.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from physioclr_ext.features.pipeline import preprocess_and_extract
from physioclr_ext.preprocess import cli


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m physioclr_ext.preprocess [options]``; returns the exit code (0 ok, 2 error)."""
    return cli.main(argv, preprocess_and_extract)


if __name__ == "__main__":
    sys.exit(main())

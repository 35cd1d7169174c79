"""``.npz`` files written atomically and byte for byte reproducibly.

``np.savez`` stamps every member of the zip archive with the current time, so two runs that compute the
same arrays wrote different files, and it writes in place. :func:`save_npz` writes the same format
(``np.load`` reads it) with a fixed member time, to a temporary name that is renamed at the end: a killed
run leaves the previous file or the whole new one, never a part.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np
from numpy.typing import ArrayLike

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""The timestamp of every member (the earliest a zip can hold)."""


def save_npz(path: str, **arrays: ArrayLike) -> None:
    """``np.savez(path, **arrays)``, atomic and reproducible (no pickled objects)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise

"""MAT 5 files of the preprocessed windows, encoded directly: the bytes ``scipy.io.savemat`` writes
(uncompressed, default options) for 2-D numeric arrays and integers, without its per-variable overhead.

One window is ``feats`` ``(L, T)`` float32, ``curr_sample_rate``, ``label`` ``(1, K)`` float32, ``idx`` and
``patient_id`` (the layout fairseq-signals' ``FileECGDataset`` reads with ``scipy.io.loadmat``). Preprocessing
writes tens of thousands of them; ``savemat`` spends most of each call converting and checking its
arguments, so writing MIT-BIH's 17,297 windows took about as long as filtering its records.

Layout (MATLAB "MAT-File Format", 2019, ch. 1): a 128-byte header, then one ``miMATRIX`` element per
variable holding the array flags, the dimensions, the name and the column-major data, each sub-element
padded to 8 bytes; sub-elements of at most 4 bytes use the small data element format.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Union

import numpy as np

MAT_HEADER = b"MATLAB 5.0 MAT-file, written by physioclr-ext".ljust(116)
"""The descriptive text of every window's MAT 5 header: scipy writes the creation time there, which made
two runs' windows differ byte for byte."""

FILE_HEADER = MAT_HEADER + b"\x00" * 8 + struct.pack("<H", 0x0100) + b"IM"
"""Description, subsystem data offset (none), version 0x0100 and the little-endian mark."""

_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX = 1, 5, 6, 14
# dtype -> (MAT data type of the values, MAT array class), as scipy.io.matlab's NP_TO_MTYPES / NP_TO_MXTYPES.
_TYPES = {
    "f8": (9, 6),  # miDOUBLE, mxDOUBLE_CLASS
    "f4": (7, 7),  # miSINGLE, mxSINGLE_CLASS
    "i8": (12, 14),  # miINT64, mxINT64_CLASS
    "i4": (5, 12),  # miINT32, mxINT32_CLASS
}

Buffer = Union[bytes, memoryview]


def _element(mdtype: int, payload: Buffer) -> list[Buffer]:
    """A data element: small format (tag and up to 4 bytes in 8) or an 8-byte tag, the data, zero padding."""
    size = len(payload) if isinstance(payload, bytes) else payload.nbytes
    if size <= 4:
        return [struct.pack("<HH", mdtype, size) + bytes(payload).ljust(4, b"\x00")]
    pad = -size % 8
    return (
        [struct.pack("<II", mdtype, size), payload, b"\x00" * pad]
        if pad
        else [struct.pack("<II", mdtype, size), payload]
    )


def _matrix(name: str, value: np.ndarray | int) -> list[Buffer]:
    """The ``miMATRIX`` element of one variable (a 2-D array, or a scalar as ``(1, 1)``)."""
    array = np.asarray(value)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    kind = array.dtype.str[1:]
    if array.ndim != 2 or kind not in _TYPES or array.dtype.byteorder == (">" if np.little_endian else "<"):
        raise TypeError(
            f"{name}: only 2-D native float32/float64/int32/int64 arrays are encoded, got {array.dtype} {array.shape}"
        )
    mdtype, mclass = _TYPES[kind]
    data = np.ascontiguousarray(array.T)  # column-major order, as MATLAB stores it
    body: list[Buffer] = [struct.pack("<IIII", _MI_UINT32, 8, mclass, 0)]
    body += _element(_MI_INT32, struct.pack("<ii", *array.shape))
    body += _element(_MI_INT8, name.encode("latin1"))
    body += _element(mdtype, data.data.cast("B") if data.size else b"")
    size = sum(len(b) if isinstance(b, bytes) else b.nbytes for b in body)
    return [struct.pack("<II", _MI_MATRIX, size), *body]


def encode(variables: Mapping[str, np.ndarray | int]) -> list[Buffer]:
    """The MAT 5 file of ``variables`` as a list of buffers (their concatenation is the file).

    Equal, byte for byte, to ``scipy.io.savemat(f, variables)`` with :data:`MAT_HEADER` as its description.

    Raises:
        TypeError: a variable is not a 2-D float32/float64/int32/int64 array or a Python/NumPy integer.

    Example:
        >>> parts = encode({"feats": np.zeros((2, 3), np.float32), "idx": 4})
        >>> len(b"".join(parts))
        256
    """
    parts: list[Buffer] = [FILE_HEADER]
    for name, value in variables.items():
        parts += _matrix(name, value)
    return parts


def write_atomic(path: Path, parts: list[Buffer]) -> None:
    """Write the concatenation of ``parts`` to ``.NAME.tmpPID`` beside ``path`` with one ``writev`` where the
    system has it, then rename it to ``path``: a killed run never leaves a partial file under its final name."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    try:
        total = sum(len(b) if isinstance(b, bytes) else b.nbytes for b in parts)
        written = os.writev(fd, parts) if hasattr(os, "writev") else 0
        if written != total:  # no writev, or a short write: write what is left plainly
            data = b"".join(bytes(b) for b in parts)
            os.lseek(fd, written, os.SEEK_SET)
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, path)

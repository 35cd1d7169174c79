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

import contextlib
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
    head, data, pad = _matrix_split(name, value)
    return [head, data, pad] if pad else [head, data]


def _matrix_split(name: str, value: np.ndarray | int) -> tuple[bytes, Buffer, bytes]:
    """The ``miMATRIX`` element of one variable as ``(everything before the data, the column-major data,
    its padding)``."""
    array = np.asarray(value)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    kind = array.dtype.str[1:]
    if array.ndim != 2 or kind not in _TYPES or array.dtype.byteorder == (">" if np.little_endian else "<"):
        raise TypeError(
            f"{name}: only 2-D native float32/float64/int32/int64 arrays are encoded, got {array.dtype} {array.shape}"
        )
    mdtype, mclass = _TYPES[kind]
    data = column_major(array)
    size = len(data) if isinstance(data, bytes) else data.nbytes
    if size <= 4:  # small data element: tag and data in 8 bytes
        body = _fields(name, array.shape, mclass) + b"".join(bytes(b) for b in _element(mdtype, data))
        return struct.pack("<II", _MI_MATRIX, len(body)) + body, b"", b""
    pad = b"\x00" * (-size % 8)
    fields = _fields(name, array.shape, mclass)
    head = struct.pack("<II", _MI_MATRIX, len(fields) + 8 + size + len(pad)) + fields + struct.pack("<II", mdtype, size)
    return head, data, pad


def _fields(name: str, shape: tuple[int, ...], mclass: int) -> bytes:
    """Array flags, dimensions and name sub-elements of a ``miMATRIX``."""
    parts: list[Buffer] = [struct.pack("<IIII", _MI_UINT32, 8, mclass, 0)]
    parts += _element(_MI_INT32, struct.pack("<ii", *shape))
    parts += _element(_MI_INT8, name.encode("latin1"))
    return b"".join(bytes(p) for p in parts)


def column_major(array: np.ndarray) -> Buffer:
    """The bytes of a 2-D array in column-major order (a view when ``array.T`` is C-contiguous)."""
    data = np.ascontiguousarray(array.T)
    return data.data.cast("B") if data.size else b""


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


def encode_split(variables: Mapping[str, np.ndarray | int], name: str) -> tuple[bytes, Buffer, bytes]:
    """:func:`encode` as ``(head, data, tail)``: the column-major data of the variable ``name`` and the bytes
    before and after it (``head + data + tail`` is the file). ``head`` depends only on the variables before
    ``name``, the name, the shape and the dtype of ``name``; ``tail`` only on the variables after it: a run
    writing many windows of one shape encodes them once per record and label (:class:`WindowTemplate`)."""
    head: list[Buffer] = [FILE_HEADER]
    names = list(variables)
    if name not in variables:
        raise KeyError(name)
    for other in names[: names.index(name)]:
        head += _matrix(other, variables[other])
    before, data, pad = _matrix_split(name, variables[name])
    tail: list[Buffer] = [pad]
    for other in names[names.index(name) + 1 :]:
        tail += _matrix(other, variables[other])
    return b"".join(bytes(b) for b in head) + before, data, b"".join(bytes(b) for b in tail)


class WindowTemplate:
    """Encoder of the windows of one record: their files differ only in ``feats``' data and ``label``.

    ``parts(feats, label, others)`` equals ``encode({"feats": feats, **rest})`` (``rest`` the other variables
    in their order, ``label`` among them): the bytes around ``feats``' data are built once per label value
    instead of once per window. ``feats`` must keep the shape and dtype of the first window.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._head = b""
        self._tails: dict[tuple, bytes] = {}

    def parts(self, variables: Mapping[str, np.ndarray | int], name: str, label: tuple) -> list[Buffer]:
        """The file of ``variables`` as buffers (:func:`encode`'s bytes); ``label`` identifies every variable
        other than ``name`` (equal labels, equal bytes after ``name``'s data)."""
        array = np.asarray(variables[name])
        key = (tuple(variables), name, array.shape, array.dtype.str)
        if key != self._key:
            self._key, self._tails = key, {}
            self._head = encode_split(variables, name)[0]
        tail = self._tails.get(label)
        if tail is None:
            head, _, tail = encode_split(variables, name)
            if head != self._head:  # a variable before ``name`` changed: not what the template is for
                raise ValueError("variables before the templated one differ between windows")
            self._tails[label] = tail
        return [self._head, column_major(array), tail]


def write_atomic(path: Path | str, parts: list[Buffer]) -> None:
    """Write the concatenation of ``parts`` to ``path`` so that a killed run never leaves a partial file under
    its final name.

    Where the system has them (Linux: ``O_TMPFILE`` and ``/proc``), the data goes into an unnamed file in the
    destination folder, which is then linked under ``path`` (one directory entry, no rename; a killed run
    leaves nothing); elsewhere into ``.NAME.tmpPID`` beside ``path``, renamed when complete. One ``writev``
    where the system has it.
    """
    folder, name = os.path.split(os.fspath(path))
    if _unnamed_files.usable and _write_unnamed(folder, os.fspath(path), parts):
        return
    tmp = os.path.join(folder, f".{name}.tmp{os.getpid()}")
    fd = os.open(tmp, _WRITE_FLAGS, 0o666)
    try:
        _write_all(fd, parts)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_all(fd: int, parts: list[Buffer]) -> None:
    written = os.writev(fd, parts) if _HAS_WRITEV else 0
    total = sum(len(b) if isinstance(b, bytes) else b.nbytes for b in parts)
    if written != total:  # no writev, or a short write: write what is left plainly
        data = b"".join(bytes(b) for b in parts)
        os.lseek(fd, written, os.SEEK_SET)
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


class _UnnamedFiles:
    """Whether ``O_TMPFILE`` + ``linkat`` work here (found out on first use), and a directory descriptor for
    ``linkat`` (``os.link`` calls plain ``link``, which does not follow ``/proc/self/fd``, unless given one)."""

    def __init__(self) -> None:
        self.usable = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
        self.dir_fd = -1

    def root(self) -> int:
        if self.dir_fd < 0:
            self.dir_fd = os.open("/", os.O_RDONLY)
        return self.dir_fd


_unnamed_files = _UnnamedFiles()


def _write_unnamed(folder: str, path: str, parts: list[Buffer]) -> bool:
    """``parts`` into an unnamed file in ``folder`` linked as ``path`` (replacing a file there through a
    temporary name and a rename); ``False`` when the system cannot (then nothing was written)."""
    try:
        fd = os.open(folder or ".", os.O_TMPFILE | os.O_WRONLY, 0o666)
    except OSError:  # file system without O_TMPFILE
        _unnamed_files.usable = False
        return False
    try:
        _write_all(fd, parts)
        source = f"/proc/self/fd/{fd}"
        try:
            os.link(source, path, src_dir_fd=_unnamed_files.root(), follow_symlinks=True)
        except FileExistsError:
            tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.link(source, tmp, src_dir_fd=_unnamed_files.root(), follow_symlinks=True)
            os.replace(tmp, path)
        except (OSError, NotImplementedError):  # no linkat through /proc here
            _unnamed_files.usable = False
            return False
    finally:
        os.close(fd)
    return True


_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
_HAS_WRITEV = hasattr(os, "writev")

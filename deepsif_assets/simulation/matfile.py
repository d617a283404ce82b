"""MAT-file level 5 (``-v6``, uncompressed) writer for real 2-D float arrays.

``scipy.io.savemat`` first copies every array into a ``bytes`` object in column-major order. :func:`write_mat`
writes a Fortran-ordered array's buffer as is (other arrays are copied to Fortran order first); :func:`create_mat`
lays out a file of given variables so that a producer can write their data in pieces (:func:`write_column_run`):
the simulation streams each lane's decimated rows into its file instead of holding 400 MB per lane. The layout is
the one ``scipy.io.savemat(..., format="5", do_compression=False)`` writes: a 128-byte header, then per variable
one ``miMATRIX`` element with array flags, dimensions, name and the real part; MATLAB, Octave and
``scipy.io.loadmat`` read it (tests).
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Mapping
from typing import BinaryIO

import numpy as np

_MI_INT8, _MI_INT32, _MI_UINT32, _MI_SINGLE, _MI_DOUBLE, _MI_MATRIX = 1, 5, 6, 7, 9, 14
_MX_DOUBLE_CLASS, _MX_SINGLE_CLASS = 6, 7
#: dtype → (array class, data element type)
_TYPES = {np.dtype("<f4"): (_MX_SINGLE_CLASS, _MI_SINGLE), np.dtype("<f8"): (_MX_DOUBLE_CLASS, _MI_DOUBLE)}
_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: neuro-pipelines".ljust(116, b" ") + b"\0" * 8
_HEADER += struct.pack("<H2s", 0x0100, b"IM")


def _padding(n_bytes: int) -> bytes:
    return b"\0" * (-n_bytes % 8)


def _name_element(name: bytes) -> bytes:
    if len(name) <= 4:  # the small data element format (type and size in one word), as MATLAB and SciPy write
        return struct.pack("<HH", _MI_INT8, len(name)) + name.ljust(4, b"\0")
    return struct.pack("<II", _MI_INT8, len(name)) + name + _padding(len(name))


def _checked_dtype(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.dtype:
    """The little-endian dtype of a writable variable; a ValueError naming it otherwise."""
    little = np.dtype(dtype).newbyteorder("<")
    if len(shape) != 2 or little not in _TYPES:
        raise ValueError(f"{name}: expected a 1-D or 2-D float32/float64 array, got {np.dtype(dtype)} {shape}")
    if int(np.prod(shape)) * little.itemsize >= 2**32 - 256:
        raise ValueError(f"{name}: {shape} {little} does not fit a level-5 MAT-file element (< 4 GiB)")
    return little


def _data_bytes(shape: tuple[int, int], dtype: np.dtype) -> tuple[int, int]:
    """A variable's data size in bytes, and with the padding to 8 bytes that follows it."""
    n_bytes = shape[0] * shape[1] * dtype.itemsize
    return n_bytes, n_bytes + len(_padding(n_bytes))


def _element_head(name: str, shape: tuple[int, int], dtype: np.dtype) -> bytes:
    """The bytes of a variable's ``miMATRIX`` element before its data."""
    mx_class, data_type = _TYPES[dtype]
    n_bytes, padded = _data_bytes(shape, dtype)
    body = (
        struct.pack("<IIII", _MI_UINT32, 8, mx_class, 0)  # array flags: class, no complex/global/logical
        + struct.pack("<IIii", _MI_INT32, 8, *shape)
        + _name_element(name.encode("ascii"))
        + struct.pack("<II", data_type, n_bytes)
    )  # fmt: skip
    return struct.pack("<II", _MI_MATRIX, len(body) + padded) + body


def write_mat(stream: BinaryIO, variables: Mapping[str, np.ndarray]) -> None:
    """Write ``variables`` (name → real float32/float64 array, 1-D as a row, or 2-D) as a MAT-file to ``stream``;
    a variable that cannot be written is a ValueError before anything is written."""
    arrays = {}
    for name, value in variables.items():
        array = np.asarray(value)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        dtype = _checked_dtype(name, array.shape, array.dtype)
        arrays[name] = np.asfortranarray(array, dtype=dtype)  # no copy if already so
    stream.write(_HEADER)
    for name, array in arrays.items():
        stream.write(_element_head(name, array.shape, array.dtype))
        stream.write(memoryview(array.T).cast("B"))  # the transpose of a Fortran array is C-contiguous
        stream.write(_padding(array.nbytes))


def create_mat(file: BinaryIO, variables: Mapping[str, tuple[tuple[int, int], np.dtype]]) -> dict[str, int]:
    """Lay out a MAT-file for ``variables`` (name → (2-D shape, float32/float64)) in the empty open ``file``: its
    header and every variable's element head are written and the whole size is allocated on disk (a full disk is an
    OSError here, not half-way); returns where each variable's data starts. Once each variable's column-major bytes
    are written there, the file holds exactly what :func:`write_mat` writes for those arrays. Bad variables are a
    ValueError before anything is written."""
    layout = []
    offset = len(_HEADER)
    for name, (shape, dtype) in variables.items():
        dtype = _checked_dtype(name, tuple(shape), dtype)
        head = _element_head(name, shape, dtype)
        layout.append((name, offset, head))
        offset += len(head) + _data_bytes(shape, dtype)[1]
    os.posix_fallocate(file.fileno(), 0, offset)  # reads as zeros: the padding
    file.seek(0)
    file.write(_HEADER)
    for _name, start, head in layout:
        file.seek(start)
        file.write(head)
    file.flush()
    return {name: start + len(head) for name, start, head in layout}


def write_column_run(fd: int, data_offset: int, n_rows: int, column: int, first_row: int, values: np.ndarray) -> None:
    """Write ``values`` (contiguous, the variable's dtype) as rows ``first_row …`` of column ``column`` of a
    column-major variable with ``n_rows`` rows whose data starts at ``data_offset`` (see :func:`create_mat`)."""
    if column < 0 or first_row < 0 or first_row + len(values) > n_rows:
        raise ValueError(f"rows {first_row}..{first_row + len(values) - 1} of column {column} are outside the "
                         f"variable's {n_rows} rows")
    position = data_offset + (column * n_rows + first_row) * values.itemsize
    written = os.pwrite(fd, values, position)
    if written != values.nbytes:  # a regular file writes all or raises; never publish a short write
        raise OSError(errno.EIO, f"wrote {written} of {values.nbytes} bytes at offset {position}")

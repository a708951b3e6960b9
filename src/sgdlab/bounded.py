"""Bounded reading of files users hand to sgdlab: model files, NPZ and IDX data, CSV lines.

Every size a file *declares* (a zip member's uncompressed size, an ``.npy`` header's shape,
an IDX header's dimensions) is checked against the file and against a cap before anything
of that size is allocated, so a small hostile file cannot take gigabytes of memory. The caps
are module constants; the ``SGDLAB_MAX_FILE_BYTES`` environment variable (bytes) replaces
:data:`MAX_DATA_BYTES` for a user with bigger data.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from .errors import SgdlabError
from .memory import human

#: the most a model file may expand to (a 64-32-16-10 network is ~25 KB)
MAX_MODEL_BYTES = 1 << 30
#: the most a data file (NPZ arrays, IDX payload) may expand to, unless $SGDLAB_MAX_FILE_BYTES
MAX_DATA_BYTES = 4 << 30
#: above this many bytes, a zip member that expands more than MAX_RATIO times is refused
RATIO_FLOOR = 16 << 20
MAX_RATIO = 200
#: the longest line a CSV may have (a header of 100,000 long column names fits)
MAX_LINE_CHARS = 64 << 20


def data_cap() -> int:
    raw = os.environ.get("SGDLAB_MAX_FILE_BYTES")
    if raw:
        try:
            v = int(raw)
            if v > 0:
                return v
        except ValueError:
            pass
        raise SgdlabError(f"SGDLAB_MAX_FILE_BYTES: expected a number of bytes > 0, got {raw!r}")
    return MAX_DATA_BYTES


def npz_headers(path, cap: int, what: str = "file") -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{name: (shape, dtype)}`` of every array in the ``.npz`` at ``path``, read from the
    ``.npy`` headers only. Raises :class:`SgdlabError` if the archive or a header is
    damaged, an array is an object array, a header declares more bytes than its member holds,
    the total exceeds ``cap``, or a large member is compressed suspiciously well (a bomb)."""
    out = {}
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                total += info.file_size
                if total > cap:
                    raise SgdlabError(f"{path}: the {what} expands to more than {human(cap)}; refused")
                if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                    raise SgdlabError(f"{path}: {info.filename} expands {info.file_size // max(info.compress_size, 1)}"
                                      f" times ({human(info.file_size)}); refused as a compression bomb")
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=10000)
                    elif version in ((2, 0), (3, 0)):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=10000)
                    else:
                        raise ValueError(f"unknown .npy version {version}")
                if dtype.hasobject:
                    raise SgdlabError(f"{path}: {info.filename} is an object array; sgdlab never unpickles files")
                nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if nbytes > info.file_size:
                    raise SgdlabError(f"{path}: {info.filename} declares {human(nbytes)} of data but holds "
                                      f"{human(info.file_size)} (a damaged or hostile file)")
                out[info.filename[:-4]] = (tuple(shape), dtype)
    except SgdlabError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, SyntaxError, KeyError) as e:
        raise SgdlabError(f"{path}: not a readable .npz {what} ({type(e).__name__}: {e})") from None
    return out


def bounded_lines(f, path, limit: int = MAX_LINE_CHARS):
    """The lines of the text file ``f``; :class:`SgdlabError` at the first line longer than
    ``limit`` characters, without reading more of it than ``limit``."""
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith("\n"):
            raise SgdlabError(f"{path}: a line longer than {limit:,} characters; is this a CSV file?")
        yield line


def short(text, n: int = 60) -> str:
    """``repr(text)``, cut to about ``n`` characters, for error messages."""
    r = repr(text)
    return r if len(r) <= n else r[:n] + "...'"

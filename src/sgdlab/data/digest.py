"""A content digest of a split dataset: what a study's runs were trained on.

The store records it (``meta.data_digest``) so that ``--resume`` refuses a data file that
changed since the study started, and every worker checks the data it loads against it.
"""

from __future__ import annotations

import hashlib

import numpy as np


def dataset_digest(data) -> str:
    """SHA-256 (hex) of the features, labels and class names of each part of ``data`` (a
    :class:`~sgdlab.data.Dataset`), in that order: the values, the split and the label
    encoding all enter it, the file's name and modification time do not."""
    h = hashlib.sha256()
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "classes"):
        a = np.ascontiguousarray(getattr(data, name))
        if a.dtype.kind in "fc":
            a = a.astype(np.float64)  # the digest does not depend on the dtype a study trains in
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()

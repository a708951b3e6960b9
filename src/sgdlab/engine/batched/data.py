"""A group's data in its dtype, prepared once for every stack of the group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...data import Dataset
from ...nn.network import one_hot
from ..kernels import augment, ce_terms


@dataclass
class GroupData:
    """A group's data in its dtype: the training inputs with a column of ones ``Xa`` and
    one-hot targets ``Y``; the train, validation and test inputs as one matrix ``X_all``
    (rows ``bounds[i]`` are part ``i``), their labels and one-hot masks ``(rows, 1, n_out)``,
    and the cross-entropy's ``ce_terms`` of those masks."""

    Xa: np.ndarray
    Y: np.ndarray
    X_all: np.ndarray
    y_all: np.ndarray
    Y_mask: np.ndarray
    bounds: list
    n: int
    has_val: bool
    ce_terms: tuple = ()

    def __post_init__(self):
        self.ce_terms = ce_terms(self.Y_mask, self.X_all.dtype)


def prepare_group_data(data: Dataset, dtype) -> GroupData:
    d = data.astype(dtype)
    k = d.n_classes
    Xa = augment(d.X_train)
    X_all = augment(np.concatenate([d.X_train, d.X_val, d.X_test]))
    y_all = np.concatenate([d.y_train, d.y_val, d.y_test]).astype(np.int64)
    sizes = np.cumsum([0, len(d.y_train), len(d.y_val), len(d.y_test)])
    return GroupData(Xa, one_hot(d.y_train, k, dtype), X_all, y_all,
                     one_hot(y_all, k, bool)[:, None, :], list(zip(sizes[:-1], sizes[1:])),
                     len(d.y_train), len(d.y_val) > 0)

"""The paper's published numbers (Hoyos, Vásquez, Ciro, EAFIT 2024), for comparison only.

Validation accuracy at the best learning rate, digits, 64-32-16-10, batch 10, the hidden
activation on the output layer as well (what sgdlab calls *paper mode*). Table 2 is
cross-entropy, Table 3 mean squared error. Every accuracy is a multiple of 1/360: the
paper's validation set had 360 images. The paper does not say how many runs (seeds) each
number comes from; it reads as one run per setting.
"""

from __future__ import annotations

VALIDATION_SIZE = 360

# (cost, init, hidden activation) -> validation accuracy (fraction)
PUBLISHED: dict[tuple[str, str, str], float] = {
    ("ce", "xavier", "sigmoid"): 0.9639,
    ("ce", "xavier", "tanh"): 0.6722,
    ("ce", "xavier", "relu"): 0.1944,
    ("ce", "gaussian", "sigmoid"): 0.8583,
    ("ce", "gaussian", "tanh"): 0.0889,
    ("ce", "gaussian", "relu"): 0.1056,
    ("mse", "xavier", "sigmoid"): 0.9167,
    ("mse", "xavier", "tanh"): 0.2528,
    ("mse", "xavier", "relu"): 0.1917,
    ("mse", "gaussian", "sigmoid"): 0.8250,
    ("mse", "gaussian", "tanh"): 0.0917,
    ("mse", "gaussian", "relu"): 0.2250,
}

TABLE_OF_COST = {"ce": "Table 2", "mse": "Table 3"}

# The paper's framework comparison for sigmoid + cross-entropy (accuracy, as printed).
FRAMEWORKS = {"scikit-learn MLPClassifier": 0.72263, "TensorFlow": 0.94999}


def exact(value: float) -> float:
    """The multiple of 1/360 that a published (two-decimal percent) value rounds from."""
    return round(value * VALIDATION_SIZE) / VALIDATION_SIZE


def is_paper_setting(spec: dict | None) -> bool:
    """True when the study is on the paper's data and architecture (digits, hidden 32-16).

    Only then are the published numbers shown beside the reproduced ones.
    """
    if not spec:
        return False
    return spec.get("dataset") == "digits" and list(spec.get("hidden") or []) == [32, 16]

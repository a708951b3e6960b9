"""Datasets: the bundled scikit-learn ones, CSV/NPZ files, stratified splits."""

from .datasets import BUNDLED, Dataset, load_dataset, read_features

__all__ = ["BUNDLED", "Dataset", "load_dataset", "read_features"]

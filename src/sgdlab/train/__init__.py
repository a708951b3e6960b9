"""Optimiser and training loop."""

from .loop import METRICS, History, TrainResult, build_network, epoch_batches, train
from .optim import SGD

__all__ = ["METRICS", "History", "TrainResult", "SGD", "build_network", "epoch_batches", "train"]

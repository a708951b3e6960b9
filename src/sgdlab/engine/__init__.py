"""The engine: optimiser, training loop (single engine), batched engine, per-epoch diagnostics.

``sgdlab.train`` (the function) is :func:`sgdlab.engine.loop.train`; the package is named
``engine`` so that no function hides it.
"""

from .loop import METRICS, History, TrainResult, build_network, epoch_batches, train
from .optim import SGD

__all__ = ["METRICS", "History", "TrainResult", "SGD", "build_network", "epoch_batches", "train"]

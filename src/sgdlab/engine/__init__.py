"""The engine: kernels, optimiser, minibatch schedule, per-epoch bookkeeping, the single-model
:class:`Trainer` and training loop, the batched engine, per-epoch diagnostics.

``sgdlab.train`` (the function) is :func:`sgdlab.engine.loop.train`; the package is named
``engine`` so that no function hides it.
"""

from .history import METRICS, EpochBook, History
from .loop import TrainResult, build_network, train
from .optim import SGD
from .schedule import epoch_batches
from .trainer import Trainer

__all__ = ["METRICS", "EpochBook", "History", "TrainResult", "SGD", "Trainer", "build_network", "epoch_batches",
           "train"]

"""The single engine's training loop: a :class:`~sgdlab.engine.trainer.Trainer`'s epochs, each
followed by its metrics and the :class:`~sgdlab.engine.history.EpochBook` (divergence, early
stopping)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..config import RunConfig, rng_streams
from ..data import Dataset, load_dataset
from ..nn.network import Network, one_hot
from .diagnostics import Recorder, append_row, conclude
from .history import METRICS, EpochBook, History
from .inputs import check_config, check_data, check_network, check_on_epoch
from .kernels import augment
from .packed import PackedNetwork
from .schedule import epoch_batches
from .trainer import Trainer

__all__ = ["METRICS", "History", "TrainResult", "build_network", "epoch_batches", "train"]


@dataclass
class TrainResult:
    network: Network
    history: History
    config: RunConfig


def build_network(config: RunConfig, n_features: int, n_classes: int, init_rng=None) -> Network:
    net = Network([n_features, *config.hidden, n_classes], config.activation, config.output,
                  config.cost, config.dtype, config.ce_outside)
    if init_rng is None:
        init_rng, _ = rng_streams(config.seed)
    return net.initialize(config.init, config.bias_init, init_rng)


def train(config: RunConfig, data: Dataset | None = None, *,
          on_epoch: Callable[[int, History], None] | None = None,
          network: Network | None = None, diagnostics: bool = True) -> TrainResult:
    """Train one network as ``config`` says, on ``data`` (loaded from the config if None).

    ``on_epoch(epoch, history)`` is called after each epoch (progress bars). ``network``
    continues training a given network instead of initialising one; the shuffling stream
    still comes from ``config.seed``. ``diagnostics=False`` skips the per-layer diagnostics
    (:mod:`sgdlab.engine.diagnostics`; ``History.diagnostics`` stays empty); the status
    (``chance`` included) is set either way.

    Raises :class:`~sgdlab.errors.SgdlabError` for inputs that cannot be trained on (see
    :mod:`sgdlab.engine.inputs`): data whose parts disagree in shape, labels outside
    ``0..len(classes)-1``, non-finite features, a network of another shape or kind than
    ``config`` describes, a network too big for the memory available.
    """
    check_config(config)
    check_on_epoch(on_epoch)
    if data is None:
        data = load_dataset(config.dataset, config.split, config.split_seed, config.label, config.scale)
    data = check_data(data)
    init_rng, shuffle_rng = rng_streams(config.seed)
    if network is None:
        from ..memory import check_fits  # before allocating: hidden=(10**9,) is one error, not a MemoryError

        check_fits([data.n_features, *config.hidden, data.n_classes], config.dtype,
                   max(len(data.y_train), len(data.y_val), len(data.y_test)), what="config.hidden: the network",
                   advice="use smaller hidden layer sizes")
        net = build_network(config, data.n_features, data.n_classes, init_rng)
    else:
        net = check_network(network, config, data.n_features, data.n_classes)
    data = data.astype(net.dtype)  # config.dtype, or that of the network given to continue
    # per part: the features with a column of ones appended (for PackedNetwork), labels, one-hot targets
    parts = {name: (augment(getattr(data, f"X_{name}")), y, one_hot(y, data.n_classes, net.dtype))
             for name, y in (("train", data.y_train), ("val", data.y_val), ("test", data.y_test))}
    trainer = Trainer(net, config, shuffle_rng)
    packed = trainer.packed
    book = EpochBook(config.patience if len(data.y_val) else None)
    hist = book.history
    rows = max(config.batch_size, *(len(y) for _, y, _ in parts.values()))
    recorder = Recorder([config], packed.sizes, -(-len(data.y_train) // config.batch_size)) if diagnostics else None
    layers = [b[None] for b in packed.blocks]
    Xa_val = parts["val"][0]
    with trainer.running(rows):
        if recorder is not None:  # epoch 0: the initial weights
            stats = recorder.validation()
            _validation_stats(packed, Xa_val, stats)
            append_row(hist.diagnostics, recorder.row(layers, stats, initial=True))
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            trainer.epoch(parts["train"][0], parts["train"][2], None if recorder is None else recorder.grads)
            trainer.unpack()
            seconds = time.perf_counter() - t0
            stats = recorder.validation() if recorder is not None else None
            # the validation pass feeds the diagnostics too (evaluated in turn: outputs are buffer views)
            metrics = {name: trainer.evaluate(*part, _validation_stats(packed, Xa_val, stats)
                                              if name == "val" and stats is not None and len(part[1]) else None)
                       for name, part in parts.items()}
            row = recorder.row(layers, stats) if recorder is not None else None
            if not book.record(epoch, metrics, trainer.finite(), seconds, row):
                break
            if on_epoch:
                on_epoch(epoch, hist)
            if book.patience_over(epoch, metrics["val"][1]):
                break
    conclude(hist, config, data.y_val)
    return TrainResult(net, hist, config)


def _validation_stats(packed: PackedNetwork, Xa, stats) -> np.ndarray:
    """The forward pass on the validation rows ``Xa``, its layers' outputs added to ``stats``;
    returns the outputs ``(n, n_outputs)`` (as :meth:`PackedNetwork.predict_proba`)."""
    acts = packed.layer_outputs(Xa)
    if Xa.shape[0]:
        for l, a in enumerate(acts):
            stats.add(l, a.T[None])
    return acts[-1].T

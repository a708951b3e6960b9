"""The training loop: epochs of seeded minibatches, per-epoch metrics, divergence, early stopping."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import numpy as np

from ..config import RunConfig, rng_streams
from ..data import Dataset, load_dataset
from ..nn.costs import get_cost
from ..nn.network import Network, one_hot
from .kernels import augment
from .packed import PackedNetwork
from .blas import for_network
from .diagnostics import Recorder, append_row, conclude, flat_sq_norms, flat_starts
from .optim import SGD

METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds")


@dataclass
class History:
    """Per-epoch metrics of one run (index ``i`` is epoch ``i + 1``).

    ``status`` is ``done``, ``chance`` (finished, but the final validation accuracy is no
    better than the majority-class rate: see :func:`sgdlab.engine.diagnostics.at_chance`) or
    ``diverged`` (a non-finite loss or parameter; ``diverged_epoch`` says when, and the lists
    hold the epochs before it). ``stopped_epoch`` is set when early stopping ended the run.

    ``diagnostics`` maps each name of :data:`sgdlab.engine.diagnostics.NAMES` to one row per
    epoch (row 0: the initial weights; row ``i``: after epoch ``i``) of per-layer values (NaN
    where a metric does not apply); empty when they were not recorded. ``diagnosis`` is a
    one-line explanation for a run at chance or diverged.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    status: str = "done"
    diverged_epoch: int | None = None
    stopped_epoch: int | None = None
    diagnostics: dict[str, list[list[float]]] = field(default_factory=dict)
    diagnosis: str | None = None

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def final(self) -> dict:
        """The last epoch's metrics (NaN where nothing was recorded), plus status."""
        out = {m: (getattr(self, m)[-1] if getattr(self, m) else float("nan")) for m in METRICS if m != "seconds"}
        out.update(status=self.status, epochs=self.epochs, diverged_epoch=self.diverged_epoch,
                   seconds=float(sum(self.seconds)))
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """The inverse of :meth:`to_dict`; dicts written before a field existed get its default."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if d.get("diagnostics"):  # JSON has no NaN: null comes back as None
            d["diagnostics"] = {k: [[float("nan") if x is None else x for x in row] for row in rows]
                                for k, rows in d["diagnostics"].items()}
        return cls(**d)


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


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator):
    """One epoch's minibatches as index arrays: a fresh permutation, cut into batch_size
    slices, the last smaller slice included."""
    perm = rng.permutation(n)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def _finite(net: Network) -> bool:
    return all(np.isfinite(p).all() for p in net.params)


def train(config: RunConfig, data: Dataset | None = None, *,
          on_epoch: Callable[[int, History], None] | None = None,
          network: Network | None = None, diagnostics: bool = True) -> TrainResult:
    """Train one network as ``config`` says, on ``data`` (loaded from the config if None).

    ``on_epoch(epoch, history)`` is called after each epoch (progress bars). ``network``
    continues training a given network instead of initialising one; the shuffling stream
    still comes from ``config.seed``. ``diagnostics=False`` skips the per-layer diagnostics
    (:mod:`sgdlab.engine.diagnostics`; ``History.diagnostics`` stays empty); the status
    (``chance`` included) is set either way.
    """
    if data is None:
        data = load_dataset(config.dataset, config.split, config.split_seed, config.label, config.scale)
    init_rng, shuffle_rng = rng_streams(config.seed)
    net = network or build_network(config, data.n_features, data.n_classes, init_rng)
    dtype = np.dtype(net.dtype)  # config.dtype, or that of the network given to continue
    data = data.astype(dtype)
    opt = SGD(config.lr, config.momentum, config.nesterov, config.l2)
    k = data.n_classes
    Y_train = one_hot(data.y_train, k, dtype)
    # features with a column of ones appended, for the packed network (see PackedNetwork)
    parts = [("train", augment(data.X_train), data.y_train, Y_train),
             ("val", augment(data.X_val), data.y_val, one_hot(data.y_val, k, dtype)),
             ("test", augment(data.X_test), data.y_test, one_hot(data.y_test, k, dtype))]
    hist = History()
    best, waited = -1.0, 0
    n, bs = len(data.y_train), config.batch_size
    # The fast path: parameters packed in one flat array, gradients computed in place into
    # preallocated buffers (the same math as Network.gradients, see PackedNetwork).
    packed = PackedNetwork(net)
    Xa, cost = parts[0][1], get_cost(net.cost, net.ce_outside)
    theta, mask = packed.theta, packed.weight_mask
    gradient, step = packed.gradient, opt.step_flat
    rows = max(bs, len(data.y_train), len(data.y_val), len(data.y_test))
    recorder = Recorder([config], packed.sizes, -(-n // bs)) if diagnostics else None
    if recorder is not None:
        layers = [b[None] for b in packed.blocks]
        starts, scratch = flat_starts(packed.sizes), np.empty_like(packed.grad)
    with np.errstate(all="ignore"), for_network(packed.sizes, rows):
        if recorder is not None:  # epoch 0: the initial weights
            stats = recorder.validation()
            _validation_stats(packed, parts[1][1], stats)
            append_row(hist.diagnostics, recorder.row(layers, stats, initial=True))
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            perm = shuffle_rng.permutation(n)
            Xs, Ys = Xa[perm], Y_train[perm]
            if recorder is None:
                for i in range(0, n, bs):
                    step(theta, gradient(Xs[i:i + bs], Ys[i:i + bs]), mask)
            else:
                norms = recorder.grads
                for i in range(0, n, bs):
                    g = gradient(Xs[i:i + bs], Ys[i:i + bs])
                    flat_sq_norms(g, starts, scratch, norms.next())
                    step(theta, g, mask)
            packed.unpack()
            seconds = time.perf_counter() - t0
            metrics = {}
            stats = recorder.validation() if recorder is not None else None
            for name, Xp, yp, Yp in parts:
                if len(yp):
                    if name == "val" and stats is not None:
                        out = _validation_stats(packed, Xp, stats)
                    else:
                        out = packed.predict_proba(Xp)
                    metrics[name] = (float(cost.value(out, Yp)), float(np.mean(np.argmax(out, axis=1) == yp)))
                else:
                    metrics[name] = (float("nan"), float("nan"))
            if not np.isfinite(metrics["train"][0]) or not _finite(net):
                hist.status, hist.diverged_epoch = "diverged", epoch
                break
            for name in ("train", "val", "test"):
                getattr(hist, f"{name}_loss").append(metrics[name][0])
                getattr(hist, f"{name}_acc").append(metrics[name][1])
            hist.seconds.append(seconds)
            if recorder is not None:
                append_row(hist.diagnostics, recorder.row(layers, stats))
            if on_epoch:
                on_epoch(epoch, hist)
            if config.patience is not None and len(data.y_val):
                if metrics["val"][1] > best:
                    best, waited = metrics["val"][1], 0
                else:
                    waited += 1
                    if waited >= config.patience:
                        hist.stopped_epoch = epoch
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

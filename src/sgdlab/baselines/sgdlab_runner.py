"""sgdlab itself, through :func:`sgdlab.train`: the reference every other row is compared with."""

from __future__ import annotations

from dataclasses import replace

from .._version import __version__
from ..config import rng_streams
from ..data import Dataset
from ..engine import build_network, train
from ..engine.schedule import epoch_permutations
from .common import Reference, SeedRun, Variant

VARIANTS = [
    Variant("sgdlab", "float64", "float64", "sgdlab", "the reference: sgdlab.train"),
    Variant("sgdlab", "float32", "float32", "sgdlab", "sgdlab.train in float32"),
]


def version() -> str:
    return __version__


def reference(config, data: Dataset, seed: int, dtype: str = "float64") -> Reference:
    """Train sgdlab on ``data`` for one seed and keep what the shared-weight baselines need:
    the initial parameters, each epoch's permutation and the parameters after each epoch."""
    cfg = replace(config, seed=seed, dtype=dtype)
    init_rng, _ = rng_streams(seed)
    net = build_network(cfg, data.n_features, data.n_classes, init_rng)
    weights = [w.copy() for w in net.weights]
    biases = [b.copy() for b in net.biases]
    snapshots = []
    result = train(cfg, data, network=net,
                   on_epoch=lambda epoch, hist: snapshots.append([p.copy() for p in net.params]))
    hist = result.history
    run = SeedRun("sgdlab", dtype, seed, dtype, "sgdlab", __version__,
                  status="ok" if hist.status in ("done", "chance") else hist.status,
                  val_acc=list(hist.val_acc), test_acc=hist.test_acc[-1] if hist.test_acc else float("nan"),
                  seconds=float(sum(hist.seconds)), samples=len(data.y_train) * hist.epochs,
                  deviation=0.0 if dtype == "float64" else None,
                  final_deviation=0.0 if dtype == "float64" else None)
    perms = epoch_permutations(seed, len(data.y_train), cfg.epochs)
    return Reference(cfg, weights, biases, perms, snapshots, run)


def run(variant: Variant, config, data: Dataset, seed: int, ref: Reference) -> SeedRun:
    """The sgdlab row for ``variant.dtype`` is the reference run itself (a copy)."""
    return replace(ref.run, val_acc=list(ref.run.val_acc))

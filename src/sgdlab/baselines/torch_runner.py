"""PyTorch: ``torch.nn.Sequential`` of ``Linear`` + ``Sigmoid`` layers and ``torch.optim.SGD``,
started from sgdlab's initial weights and fed sgdlab's minibatches.

The output activation is folded into the loss, as PyTorch recommends: ``ce`` is
``BCEWithLogitsLoss(reduction="sum") / n`` (sigmoid output, binary cross-entropy summed over
the outputs and averaged over the minibatch, sgdlab's ``ce``); ``cce`` is
``CrossEntropyLoss()`` (log-softmax + negative log-likelihood, averaged). Both have the
gradient ``a - y`` at the output that sgdlab uses, without the rounding of ``log(1 - a)`` for
a saturated sigmoid. Predictions take the argmax of the last layer, which the monotone output
activation does not change.
"""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..engine.schedule import batches  # the engines' minibatch schedule
from .common import NotInstalled, Reference, SeedRun, Variant, train_epochs

VARIANTS = [
    Variant("torch", "float64", "float64", "sgdlab", "sgdlab's initial weights and minibatch order"),
    Variant("torch", "float32", "float32", "sgdlab", "sgdlab's initial weights and minibatch order"),
]


def _import():
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        raise NotInstalled("torch", type(e).__name__) from None
    return torch


def version() -> str:
    return _import().__version__


def build(torch, weights, biases, dtype):
    """``Sequential(Linear, Sigmoid, ..., Linear)`` holding sgdlab's parameters
    (``Linear.weight = W.T``); the output activation is applied by the loss."""
    layers = []
    for l, (W, b) in enumerate(zip(weights, biases)):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)).to(dtype))
            lin.bias.copy_(torch.from_numpy(np.asarray(b)).to(dtype))
        layers.append(lin)
        if l < len(weights) - 1:
            layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


def loss_fn(torch, cost: str):
    if cost == "ce":
        bce = torch.nn.BCEWithLogitsLoss(reduction="sum")
        return lambda logits, Y, y: bce(logits, Y) / logits.shape[0]
    if cost == "cce":
        cce = torch.nn.CrossEntropyLoss()
        return lambda logits, Y, y: cce(logits, y)
    raise ValueError(f"torch baseline: cost {cost!r} not supported (ce, cce)")


def params_of(model) -> list[np.ndarray]:
    """[W0, b0, W1, b1, ...] in sgdlab's layout, float64 copies (``.T`` leaves a 1-D bias as is)."""
    return [p.detach().cpu().numpy().T.astype(np.float64) for p in model.parameters()]


def run(variant: Variant, config, data: Dataset, seed: int, ref: Reference) -> SeedRun:
    torch = _import()
    dt = getattr(torch, variant.dtype)
    out = SeedRun("torch", variant.key, seed, variant.dtype, variant.init, torch.__version__)
    if config.activation != "sigmoid" or config.output_activation not in ("sigmoid", "softmax"):
        raise ValueError("torch baseline: sigmoid hidden layers with a sigmoid or softmax output only")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads cost more than they bring
    try:
        torch.manual_seed(seed)
        model = build(torch, ref.weights, ref.biases, dt)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.0)
        lossf = loss_fn(torch, config.cost)
        X = torch.from_numpy(np.asarray(data.X_train)).to(dt)
        y = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64))
        Y = torch.nn.functional.one_hot(y, data.n_classes).to(dt)

        def step(b):
            opt.zero_grad(set_to_none=True)
            lossf(model(X[b]), Y[b], y[b]).backward()
            opt.step()

        def feed(perm):
            return [(torch.from_numpy(b),) for b in batches(perm, config.batch_size)]

        def predict(rows):
            with torch.no_grad():
                return model(torch.from_numpy(np.asarray(rows)).to(dt)).numpy()

        return train_epochs(out, data, ref.perms, feed, step, predict, lambda: params_of(model))
    finally:
        torch.set_num_threads(threads)

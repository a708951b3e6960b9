"""One SGD step of every model of a stack (forward pass, backpropagation, update) and one
epoch of them in the minibatch schedule of :mod:`sgdlab.engine.schedule`."""

from __future__ import annotations

import numpy as np

from ..diagnostics import GradNorms, StackedNorms
from ..kernels import output_delta_into
from ..optim import sgd_update
from ..schedule import epoch_order, minibatches
from .data import GroupData
from .stack import Stack, StepBuffers

PERMUTED_BYTES = 256 << 20  # a stack's per-seed permuted copies of the training set stay below this


def forward(stack: Stack, X, buf: StepBuffers) -> None:
    """Forward pass of every model into ``buf`` (eq. 3): ``Z_l = [A_{l-1}, 1] @ [W_l; b_l]``,
    ``A_l = f(Z_l)``. ``X``: for a shared stack, one minibatch ``(b, n_in + 1)`` (with the
    column of ones) per seed block, and the first layer is one GEMM per block; for a gathered
    stack ``(K, b, n_in + 1)``, one minibatch per model."""
    zs, acts, L = buf.z, buf.a, len(stack.layers)
    if stack.shared:
        for Xr, W, Z in zip(X, stack.first_by_seed, buf.z0_by_seed):
            np.matmul(Xr, W, out=Z)
    else:
        np.matmul(X, stack.layer(0), out=buf.z_models_first[0])
    for l in range(1, L):
        # hidden layers: the activation in place (contiguous, fast), then copied next to the
        # column of ones; zs[l - 1] holds the activations from here on (f' comes from them)
        stack.hidden_into(zs[l - 1], zs[l - 1])
        np.copyto(acts[l - 1], zs[l - 1])
        np.matmul(buf.hidden_models_first[l - 1], stack.blocks[l], out=buf.z_models_first[l])
    stack.out_into(zs[-1], acts[-1])


def gradient(stack: Stack, X, Y, buf: StepBuffers) -> np.ndarray:
    """Gradients of every model into ``stack.grad``, times ``stack.scale(b)`` (eq. 3, 5-9):
    ``grad [W_l; b_l] = [A_{l-1}, 1]^T @ Delta_l``, ``Delta_{l-1} = (Delta_l @ W_l^T) * f'(Z_{l-1})``.

    ``X`` as in :func:`forward`; ``Y``: one-hot targets ``(b, 1, n_out)`` shared by every
    model, or ``(b, K, n_out)``.
    """
    forward(stack, X, buf)
    zs, deltas, L = buf.z, buf.delta, len(stack.layers)
    output_delta(stack, zs[-1], buf.a[-1], Y, deltas[-1], buf.tmp[-1])
    deltas[-1] *= stack.scale(buf.n)
    for l in range(L - 1, 0, -1):
        np.matmul(buf.hidden_samples_last[l - 1], buf.delta_models_first[l], out=stack.grad_blocks[l])
        np.matmul(buf.delta_models_first[l], stack.weights_T[l], out=buf.delta_models_first[l - 1])
        if stack.hidden_times is not None:  # zs[l - 1] holds the activations
            stack.hidden_times(deltas[l - 1], zs[l - 1], zs[l - 1], buf.tmp[l - 1])
    if stack.shared:
        for Xr, D, G in zip(X, buf.d0_by_seed, stack.grad_first_by_seed):
            np.matmul(D.T, Xr, out=G)  # G^T = Delta^T [X, 1]: faster than [X, 1]^T Delta in OpenBLAS
    else:
        np.matmul(X.swapaxes(1, 2), buf.delta_models_first[0], out=stack.layer(0, stack.grad))
    return stack.grad


def output_delta(stack: Stack, z, a, Y, out, tmp) -> None:
    """dC_s/dz at the output layer of every model into ``out`` (eq. 5-6): the kernel
    :func:`~sgdlab.engine.kernels.output_delta_into` on each segment of models that share a cost
    rule. ``z``, ``a``, ``out``: ``(b, K, n_out)``; ``Y``: ``(b, 1, n_out)`` or ``(b, K, n_out)``."""
    output = stack.key.output
    for s in stack.segments:
        sl = slice(s.start, s.stop)
        output_delta_into(output, s.cost, z[:, sl], a[:, sl], Y if Y.shape[1] == 1 else Y[:, sl], out[:, sl],
                          tmp[:, sl])


def sgd_step(stack: Stack) -> None:
    """One SGD update of every model from ``stack.grad`` (:func:`~sgdlab.engine.optim.sgd_update`),
    each model with its own lr, momentum and l2; ``theta -= grad`` when the learning rate is
    folded into the gradient (``stack.lr`` None)."""
    stack.velocity = sgd_update(stack.theta, stack.grad, stack.scratch, stack.lr,  # None: lr folded in
                                decay=stack.decay, momentum=stack.momentum, nesterov=stack.nesterov,
                                velocity=stack.velocity)


def train_epoch(stack: Stack, prep: GroupData, streams: dict, norms: GradNorms | None = None) -> None:
    """One epoch of minibatch SGD for every model: each seed's stream draws one permutation,
    as in the single engine. A shared stack permutes the training set once per seed and
    reads each minibatch as a view of it, unless those copies would take more than
    ``PERMUTED_BYTES`` (a large dataset, many seeds): then it gathers each block's minibatch
    (the same rows, so the same numbers). ``norms``: each minibatch's gradient norms are
    recorded there (the diagnostics).

    Only the seeds of the models still in the stack draw: a seed whose models have all left
    (diverged, stopped) is not read again, and each seed has its own stream, so skipping its
    draw leaves every other seed's order as it was."""
    n, bs = prep.n, stack.key.batch_size
    if norms is not None:
        sq_norms = StackedNorms(stack.grad_first, stack.grad_blocks[1:], stack.K)
    seeds = sorted({c.seed for c in stack.configs})
    perms = {s: epoch_order(streams[s], n) for s in seeds}
    if stack.shared:
        if prep.Xa.nbytes * len(seeds) <= PERMUTED_BYTES:
            Xp = {s: prep.Xa[perms[s]] for s in seeds}
        else:
            Xp = {s: PermutedRows(prep.Xa, perms[s]) for s in seeds}
        seed_X = [Xp[seed] for _, _, seed in stack.seed_blocks]
        if len(stack.seed_blocks) == 1:
            Yp = prep.Y[perms[stack.seed_blocks[0][2]]][:, None, :]
    if not stack.shared or len(stack.seed_blocks) > 1:
        order = np.stack([perms[s] for s in seeds])
        rows = np.searchsorted(seeds, [c.seed for c in stack.configs])
    for mb in minibatches(n, bs):
        buf = stack.buffers_for(mb.stop - mb.start)
        if stack.shared and len(stack.seed_blocks) == 1:
            X, Y = [seed_X[0][mb]], Yp[mb]
        else:
            idx = order[rows, mb]  # (K, b): each model's rows
            Y = buf.Y
            np.take(prep.Y, idx.T, axis=0, out=Y)
            if stack.shared:
                X = [Xr[mb] for Xr in seed_X]
            else:
                X = buf.X
                np.take(prep.Xa, idx, axis=0, out=X)
        gradient(stack, X, Y, buf)
        if norms is not None:  # before the step, which may use the gradient as scratch
            sq_norms(norms.next())
        sgd_step(stack)


class PermutedRows:
    """``X[perm]`` read by row slices without the copy: ``g[i:j]`` is ``X[perm[i:j]]``."""

    def __init__(self, X, perm):
        self.X, self.perm = X, perm

    def __getitem__(self, rows: slice):
        return self.X[self.perm[rows]]

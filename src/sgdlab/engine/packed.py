"""The single engine's fast path: a :class:`~sgdlab.nn.network.Network`'s parameters in one
flat array, with in-place minibatch gradients from the kernels of :mod:`sgdlab.engine.kernels`
(the same table the batched engine uses)."""

from __future__ import annotations

import numpy as np

from ..nn.network import Network
from .kernels import forward_into, output_delta_into, times_derivative


def _samples_as_columns(name: str):
    """The kernel of activation ``name`` for ``(units, n)`` buffers: softmax normalises over the
    units, so it takes the transposed views (units last); the others are elementwise."""
    f = forward_into(name, small=True)
    return (lambda z, out: f(z.T, out.T)) if name == "softmax" else f


class _Buffers:
    """Preallocated arrays for one minibatch size ``n``, samples as columns (see PackedNetwork)."""

    def __init__(self, sizes, n, dtype):
        # hidden activations with a trailing row of ones: [A_l; 1], shape (size_l + 1, n)
        self.hidden = []
        for size in sizes[1:-1]:
            a = np.empty((size + 1, n), dtype=dtype)
            a[-1] = 1
            self.hidden.append(a)
        self.z = [np.empty((size, n), dtype=dtype) for size in sizes[1:]]
        self.a = [h[:-1] for h in self.hidden] + [np.empty((sizes[-1], n), dtype=dtype)]
        self.delta = [np.empty((size, n), dtype=dtype) for size in sizes[1:]]
        self.tmp = [np.empty((size, n), dtype=dtype) for size in sizes[1:]]
        self.n = np.array(n, dtype=dtype)  # the batch size, as a 0-d array (see kernels.ONES)
        self.L = len(sizes) - 1


class PackedNetwork:
    """A :class:`Network`'s parameters in one flat array, with in-place minibatch gradients.

    This is the training loop's fast path: the same forward pass (eq. 3) and
    backpropagation (eq. 5-9) as :meth:`Network.forward` / :meth:`Network.backward`, equal
    to them up to float rounding, without allocating per minibatch.

    Layout: ``theta = [W0.ravel(), b0, W1.ravel(), b1, ...]``, the order of
    :attr:`Network.params`. Layer ``l``'s slice of ``theta``, read as a
    ``(fan_in + 1, fan_out)`` matrix, is ``[W_l; b_l]``, so with the previous activations
    augmented by a column of ones (``[A, 1]``, see :func:`~sgdlab.engine.kernels.augment`) the pre-activation is one
    matmul, ``Z = [A, 1] @ [W; b]``, and the weight and bias gradients are one matmul,
    ``[A, 1].T @ Delta``. ``grad`` has the same layout.

    The packed parameters are a copy: call :meth:`unpack` to write them back into the
    network's arrays (in place), :meth:`pack` to read them again.
    """

    def __init__(self, net: Network):
        self.net = net
        self.dtype = np.dtype(net.dtype)
        self.sizes = list(net.sizes)
        self.theta = np.concatenate([np.asarray(p, dtype=self.dtype).ravel() for p in net.params])
        self.grad = np.zeros_like(self.theta)
        # 1 where a parameter is a weight, 0 where it is a bias (L2 applies to weights only)
        self.weight_mask = np.zeros_like(self.theta)
        self.blocks, self.grad_blocks, self.weights = [], [], []
        offset = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            size = (fan_in + 1) * fan_out
            block = self.theta[offset:offset + size].reshape(fan_in + 1, fan_out)
            self.blocks.append(block)
            self.weights.append(block[:-1])
            self.grad_blocks.append(self.grad[offset:offset + size].reshape(fan_in + 1, fan_out))
            self.weight_mask[offset:offset + fan_in * fan_out] = 1
            offset += size
        self._hidden_into = _samples_as_columns(net.activation)
        self._out_into = _samples_as_columns(net.output)
        self._hidden_times = times_derivative(net.activation)
        self._output, self._rule = net.output, net.rule
        self._buffers: dict[int, _Buffers] = {}

    def pack(self) -> None:
        """Copy the network's weight and bias arrays into the packed parameters (the inverse of
        :meth:`unpack`)."""
        for l, block in enumerate(self.blocks):
            np.copyto(block[:-1], self.net.weights[l])
            np.copyto(block[-1], self.net.biases[l])

    def unpack(self) -> Network:
        """Copy the packed parameters into the network's weight and bias arrays."""
        for l, block in enumerate(self.blocks):
            np.copyto(self.net.weights[l], block[:-1])
            np.copyto(self.net.biases[l], block[-1])
        return self.net

    def _forward(self, Xa) -> _Buffers:
        """Forward pass (eq. 3) into the buffers for ``len(Xa)`` rows, which it returns:
        Z_l.T = [W_l; b_l].T @ [A_{l-1}; 1], A_l = f(Z_l)."""
        buf = self._buffers.get(Xa.shape[0])
        if buf is None:
            buf = self._buffers[Xa.shape[0]] = _Buffers(self.sizes, Xa.shape[0], self.dtype)
        blocks, zs, acts, hidden_into = self.blocks, buf.z, buf.a, self._hidden_into
        prev = Xa.T
        for l in range(buf.L - 1):
            np.dot(blocks[l].T, prev, out=zs[l])
            hidden_into(zs[l], acts[l])
            prev = buf.hidden[l]
        np.dot(blocks[-1].T, prev, out=zs[-1])
        self._out_into(zs[-1], acts[-1])
        return buf

    def layer_outputs(self, Xa) -> list[np.ndarray]:
        """Every layer's activations for the rows of ``Xa`` (with the column of ones), samples as
        columns: ``(units, n)`` per layer, the output layer last. Views of internal buffers, as
        for :meth:`predict_proba`."""
        return self._forward(Xa).a

    def predict_proba(self, Xa) -> np.ndarray:
        """Output activations for the rows of ``Xa`` (with the column of ones), shape ``(n, n_outputs)``.

        The result is a view of an internal buffer, overwritten by the next call with the
        same number of rows; copy it to keep it. Run under ``np.errstate(over="ignore")``.
        """
        return self.layer_outputs(Xa)[-1].T

    def gradient(self, Xa, Y) -> np.ndarray:
        """Average gradient of the minibatch cost at ``theta``, written into (and returning) ``grad``.

        ``Xa`` is the minibatch with a column of ones appended (``augment(X)[rows]``),
        shape ``(n, n_inputs + 1)``; ``Y`` the one-hot targets, shape ``(n, n_outputs)``.
        Run it under ``np.errstate(over="ignore")``: a sigmoid of a very negative input
        overflows ``exp`` on the way to an exact 0.

        Inside, samples are columns (``Z_l.T``, ``A_l.T``, ``Delta_l.T``): the row of ones
        of ``[A; 1]`` then sits after the activations in memory and every elementwise
        operation runs on contiguous arrays.
        """
        buf = self._forward(Xa)
        L, zs, acts, deltas, tmps = buf.L, buf.z, buf.a, buf.delta, buf.tmp
        z, a, delta = zs[-1], acts[-1], deltas[-1]
        # output delta (eq. 5-6), averaged over the minibatch; the kernel wants units last
        output_delta_into(self._output, self._rule, z.T, a.T, Y, delta.T, tmps[-1].T)
        np.divide(delta, buf.n, out=delta)
        # backward (eq. 7-9): grad [W_l; b_l] = [A_{l-1}; 1] @ Delta_l.T,
        # Delta_{l-1}.T = (W_l @ Delta_l.T) * f'(Z_{l-1}.T)
        times = self._hidden_times
        for l in range(L - 1, -1, -1):
            prev = buf.hidden[l - 1] if l else Xa.T
            np.dot(prev, deltas[l].T, out=self.grad_blocks[l])
            if l:
                np.dot(self.weights[l], deltas[l], out=deltas[l - 1])
                if times is not None:
                    times(deltas[l - 1], zs[l - 1], acts[l - 1], tmps[l - 1])
        return self.grad

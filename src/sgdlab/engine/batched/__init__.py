"""Many networks of the same layer sizes trained together along a model axis.

A study is hundreds of small independent networks. Trained one at a time, numpy spends
its time in Python and call overhead; stacked along a model axis, one numpy call does the
work of every network. :func:`train_many` is the same algorithm as :func:`sgdlab.train`
(same initial weights, minibatch order, update rule, per-epoch metrics, divergence and early
stopping) for ``K`` models at once, equal to it within float rounding (1e-12 relative or
better on well-conditioned runs; see ``docs/batched.md``).

Layout (``K`` models, ``b`` samples in a minibatch, layer ``l`` with ``fan_in -> fan_out``
units; samples are rows, as in the single engine):

- activations, pre-activations and deltas are ``(b, K, units)``; hidden activations carry a
  trailing column of ones, ``[A, 1]``, so a layer with its bias is one product;
- the first layer's parameters of all models are one matrix ``(K * fan_out, n_in + 1)``
  (model ``k`` owns the rows ``k * fan_out : (k + 1) * fan_out``; the last column is the
  bias). The models are ordered by cost, then seed; consecutive models with one seed (a
  *seed block*) share their minibatch, so the first layer's forward pass and its gradient are
  one wide GEMM per block: ``Z = [X, 1] @ W^T`` and ``G = Delta^T @ [X, 1]``. Each seed's
  training set is permuted once per epoch and each minibatch is a view of it;
- the later layers are ``(K, fan_in + 1, fan_out)`` and go through ``np.matmul`` over the
  model axis (one small GEMM per model, inside one numpy call);
- all parameters live in one flat array ``theta`` (and the gradient in ``grad``), so the
  update is one call: without momentum and L2 the learning rate (per model) and the ``1/b``
  of the minibatch mean are folded into the output delta, and ``theta -= grad``;
- a stack whose seed blocks average fewer than ``MIN_SHARED`` models gathers each model's
  minibatch into ``(K, b, n_in + 1)`` and runs the first layer per model too.

:func:`plan` cuts each group (:class:`GroupKey`) into stacks of at most ``CACHE_MODELS``
models within the memory budget. A model that diverges, stops early or reaches its last
epoch leaves its stack at the end of that epoch; the others go on. :func:`train_many` trains
the stacks one after the other, on threads or in worker processes.
"""

from .grouping import (CACHE_MODELS, DEFAULT_MAX_BYTES, GroupKey, bytes_per_model, chunk_size, group_key,
                   n_params, plan)
from .train import OnEpoch, train_many, train_stack

__all__ = ["CACHE_MODELS", "DEFAULT_MAX_BYTES", "GroupKey", "OnEpoch", "bytes_per_model", "chunk_size",
           "group_key", "n_params", "plan", "train_many", "train_stack"]

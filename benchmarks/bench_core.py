"""Single-engine speed: sgdlab against scikit-learn, PyTorch eager and a per-sample loop.

Trains the paper's configuration (digits, 64-32-16-10, sigmoid hidden and output,
batch 10, float64, learning rate 1.0) with four implementations in one process and
prints the training throughput of each (samples per second = epochs x training rows /
seconds) and the ratios sgdlab / other. Each figure is the best of ``--repeat`` runs.

- ``sgdlab``: ``sgdlab.train`` as a user calls it. The time includes what ``train`` does
  besides the updates (per-epoch loss and accuracy on train, validation and test), so it
  is, if anything, unfair to sgdlab.
- ``scikit-learn``: ``MLPClassifier(solver="sgd", momentum=0, alpha=0, batch_size=10)``,
  run for exactly ``--epochs`` epochs (no tolerance stop, no early stopping). Its output
  layer is softmax + categorical cross-entropy (it cannot do otherwise); the work per
  step is the same size.
- ``torch-eager``: ``nn.Sequential`` of Linear + Sigmoid layers in float64,
  ``BCELoss(reduction="sum") / n`` (the paper's ce) and ``optim.SGD``, the same
  minibatch loop (skipped when torch is not installed).
- ``per-sample``: a loop in the style of Nielsen's ``network.py`` (the paper's starting
  point): samples as column vectors, backpropagation one sample at a time, the gradients
  summed over the minibatch; written here, not copied.

Threads: every contender runs with ``--threads`` BLAS threads (numpy's OpenBLAS, which
scikit-learn and the per-sample loop use too; default 1) and torch with ``--threads``
intra-op threads. The work per step is tiny (10 x 65 x 32 at most), so threads bring
nothing but hand-off costs; on a busy 2-core machine torch's default pool runs about ten
times slower and BLAS threads slow the per-epoch evaluation several times, which would
distort every ratio. ``--threads 0`` keeps each library's default.

Goals on the reference 2-core machine: sgdlab >= 5x scikit-learn, >= 5x torch eager,
>= 6x the per-sample loop. Timings on a shared machine are noisy; compare ratios taken
in one run.

Usage::

    python benchmarks/bench_core.py [--epochs 30] [--repeat 3] [--only sgdlab,torch-eager]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from sgdlab import RunConfig, load_dataset, train
from sgdlab.config import rng_streams
from sgdlab.nn.network import one_hot

HIDDEN = (32, 16)
BATCH = 10
LR = 1.0


# --------------------------------------------------------------------------------------
# the contenders: each returns (seconds spent training, validation accuracy)
# --------------------------------------------------------------------------------------
def run_sgdlab(data, epochs, seed):
    config = RunConfig(hidden=HIDDEN, activation="sigmoid", output="same", cost="ce", init="xavier",
                       lr=LR, batch_size=BATCH, epochs=epochs, seed=seed)
    t0 = time.perf_counter()
    result = train(config, data)
    seconds = time.perf_counter() - t0
    return seconds, result.history.val_acc[-1]


def run_sklearn(data, epochs, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="logistic", solver="sgd", alpha=0.0,
                        batch_size=BATCH, learning_rate="constant", learning_rate_init=LR, momentum=0.0,
                        nesterovs_momentum=False, max_iter=epochs, shuffle=True, random_state=seed,
                        tol=0.0, n_iter_no_change=epochs + 1, early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(data.X_train, data.y_train)
        seconds = time.perf_counter() - t0
    if clf.n_iter_ != epochs:
        raise RuntimeError(f"scikit-learn ran {clf.n_iter_} epochs, not {epochs}")
    return seconds, float(np.mean(clf.predict(data.X_val) == data.y_val))


def run_torch(data, epochs, seed, threads=1):
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    sizes = [data.n_features, *HIDDEN, data.n_classes]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out, dtype=torch.float64), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    bce = torch.nn.BCELoss(reduction="sum")
    X = torch.from_numpy(np.ascontiguousarray(data.X_train, dtype=np.float64))
    Y = torch.from_numpy(one_hot(data.y_train, data.n_classes))
    n = len(data.y_train)
    _, shuffle_rng = rng_streams(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.from_numpy(shuffle_rng.permutation(n))
        Xs, Ys = X[perm], Y[perm]
        for i in range(0, n, BATCH):
            xb, yb = Xs[i:i + BATCH], Ys[i:i + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = bce(model(xb), yb) / len(xb)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        pred = model(torch.from_numpy(data.X_val)).argmax(dim=1).numpy()
    return seconds, float(np.mean(pred == data.y_val))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class PerSampleNetwork:
    """Samples as column vectors, backpropagation one sample at a time (Nielsen's style).

    ``weights[l]`` has shape ``(fan_out, fan_in)`` (the paper's ``W^(k)``), ``biases[l]``
    shape ``(fan_out, 1)``; the output delta is ``a - y`` (sigmoid output, cross-entropy).
    """

    def __init__(self, sizes, rng):
        self.weights = [rng.standard_normal((m, k)) / np.sqrt(k) for k, m in zip(sizes[:-1], sizes[1:])]
        self.biases = [rng.standard_normal((m, 1)) for m in sizes[1:]]

    def feedforward(self, a):
        for W, b in zip(self.weights, self.biases):
            a = _sigmoid(W @ a + b)
        return a

    def backprop(self, x, y):
        activations = [x]
        for W, b in zip(self.weights, self.biases):
            activations.append(_sigmoid(W @ activations[-1] + b))
        delta = activations[-1] - y
        nabla_w = [None] * len(self.weights)
        nabla_b = [None] * len(self.weights)
        for l in range(len(self.weights) - 1, -1, -1):
            nabla_w[l] = delta @ activations[l].T
            nabla_b[l] = delta
            if l:
                a = activations[l]
                delta = (self.weights[l].T @ delta) * a * (1 - a)
        return nabla_w, nabla_b

    def update_minibatch(self, batch, lr):
        sum_w = [np.zeros_like(W) for W in self.weights]
        sum_b = [np.zeros_like(b) for b in self.biases]
        for x, y in batch:
            nw, nb = self.backprop(x, y)
            for s, g in zip(sum_w, nw):
                s += g
            for s, g in zip(sum_b, nb):
                s += g
        step = lr / len(batch)
        for W, g in zip(self.weights, sum_w):
            W -= step * g
        for b, g in zip(self.biases, sum_b):
            b -= step * g


def run_per_sample(data, epochs, seed):
    init_rng, shuffle_rng = rng_streams(seed)
    net = PerSampleNetwork([data.n_features, *HIDDEN, data.n_classes], init_rng)
    Y = one_hot(data.y_train, data.n_classes)
    samples = [(x.reshape(-1, 1), y.reshape(-1, 1)) for x, y in zip(data.X_train, Y)]
    n = len(samples)
    t0 = time.perf_counter()
    with np.errstate(over="ignore"):
        for _ in range(epochs):
            perm = shuffle_rng.permutation(n)
            for i in range(0, n, BATCH):
                net.update_minibatch([samples[j] for j in perm[i:i + BATCH]], LR)
    seconds = time.perf_counter() - t0
    pred = np.argmax(net.feedforward(data.X_val.T), axis=0)
    return seconds, float(np.mean(pred == data.y_val))


CONTENDERS = {"sgdlab": run_sgdlab, "scikit-learn": run_sklearn, "torch-eager": run_torch,
              "per-sample": run_per_sample}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30, help="epochs per run (default: 30, the paper's)")
    p.add_argument("--repeat", type=int, default=3, help="runs per contender; the best counts (default: 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default=",".join(CONTENDERS),
                   help=f"comma-separated subset of {', '.join(CONTENDERS)}")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS and torch threads for every contender; 0 keeps the libraries' defaults (default: 1)")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = p.parse_args(argv)
    names = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in names if s not in CONTENDERS]
    if unknown:
        p.error(f"unknown contender {unknown[0]!r}; valid: {', '.join(CONTENDERS)}")

    limits = None
    if args.threads:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(args.threads, user_api="blas")
    data = load_dataset("digits")
    n_train = len(data.y_train)
    total = args.epochs * n_train
    print(f"digits: {n_train} training rows, {data.n_features}-{'-'.join(map(str, HIDDEN))}-{data.n_classes}, "
          f"batch {BATCH}, lr {LR:g}, {args.epochs} epochs, float64, best of {args.repeat}, "
          f"threads {args.threads or 'default'}")
    available = []
    for name in names:
        if name == "torch-eager":
            try:
                import torch  # noqa: F401
            except ImportError:
                print(f"{name:>13}: skipped (torch is not installed)")
                continue
        available.append(name)
    # Round robin (one run of each contender, then the next round) so that a burst of load
    # on a shared machine hits every contender alike; the best run of each counts.
    times = {name: [] for name in available}
    cpu = {name: [] for name in available}
    acc = {}
    for _ in range(args.repeat):
        for name in available:
            c0 = time.process_time()
            if name == "torch-eager":
                seconds, acc[name] = run_torch(data, args.epochs, args.seed, args.threads)
            else:
                seconds, acc[name] = CONTENDERS[name](data, args.epochs, args.seed)
            cpu[name].append(time.process_time() - c0)
            times[name].append(seconds)
    results = {}
    for name in available:
        best = min(times[name])
        results[name] = {"seconds": best, "samples_per_s": total / best, "val_acc": acc[name],
                         "all_seconds": times[name], "cpu_seconds": min(cpu[name])}
        print(f"{name:>13}: {total / best:>10,.0f} samples/s  ({best:.3f} s best, "
              f"{np.median(times[name]):.3f} s median, {min(cpu[name]):.3f} s CPU; val acc {acc[name]:.4f})")
    if "sgdlab" in results:
        ours = results["sgdlab"]["samples_per_s"]
        goals = {"scikit-learn": 5, "torch-eager": 5, "per-sample": 6}
        for name, r in results.items():
            if name == "sgdlab":
                continue
            ratio = ours / r["samples_per_s"]
            r["ratio"] = ratio
            goal = goals.get(name)
            mark = "" if goal is None else f"  (goal >= {goal}x: {'met' if ratio >= goal else 'NOT met'})"
            print(f"sgdlab / {name}: {ratio:.1f}x{mark}")
    if args.json:
        print(json.dumps(results))
    if limits is not None:
        limits.restore_original_limits()
    return results


if __name__ == "__main__":
    main()

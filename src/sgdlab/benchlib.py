"""The benchmark behind ``sgdlab bench``: the paper's grid on the batched engine, against the
single engine, with a FLOP model, a floor and a matrix-product probe of the machine.

The grid is the first ``[[grid]]`` block of the bundled ``configs/paper.toml``: what the
paper itself ran (2 costs x 3 activations x 2 inits x 6 lrs x 5 seeds = 360 runs, paper
mode, digits, batch 10). The spec's other blocks (corrected mode, the ce conventions) are
left out so that the figure stays the paper's grid and comparable from one version to the
next. :func:`bench` measures: the wall and CPU time of that grid with
:func:`sgdlab.engine.batched.train_many` (one worker process per core by default, their CPU
time included); the single engine on a fixed sample of those runs in this process, scaled to
the grid, and the ratios of wall and of CPU time; aggregate training samples per second; and
the achieved GFLOP/s next to the GFLOP/s of one large float64 matrix product measured here.

FLOPs counted (``P_l = (fan_in + 1) * fan_out``, ``P = sum P_l``; ``n`` training rows):

- training, per sample: forward ``2 sum P_l``, weight and bias gradients ``2 sum P_l``,
  deltas of the hidden layers ``2 sum_{l >= 2} fan_in * fan_out``; per step the update
  ``2 P`` (``lr * g``, ``theta - .``);
- evaluation, per epoch: a forward pass ``2 sum P_l`` per row of train, validation and test.

For 64-32-16-10: 12,456 FLOP per training sample and 5,556 per evaluated row, so one
epoch of one run is about 14.0 MFLOP of training (update included) and 10.0 MFLOP of
evaluation; the 360-run grid of 30 epochs is 259 GFLOP.

Diagnostics (:mod:`sgdlab.engine.diagnostics`) are on by default in both engines; the grid
is trained a second time with them off (``diagnostics=False``), and the single-engine sample
too, and the cost of having them on is printed as extra CPU time.

Last, a *floor* (:func:`kernel_floor`): the CPU time of only the grid's exps (one per unit of
a sigmoid, tanh or softmax layer, per training sample and per evaluated row) and of the
engine's matrix products, each timed alone at the engine's shapes on one core. No numpy
engine that keeps this decomposition and numpy's ``exp`` can take less; the engine's CPU time
is printed as a multiple of it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace


def paper_grid(epochs=30, seeds=5, dtype="float64"):
    """The paper's grid, as the first block of ``configs/paper.toml`` (paper mode: output = the
    hidden activation) expands, with ``epochs``, ``seeds`` and ``dtype`` set: 2 x 3 x 2 x 6 x seeds
    runs in the spec's order (cost, activation, init, lr, seed innermost)."""
    from .study.expand import expand
    from .study.spec import load_spec, paper_spec_path

    spec = load_spec(paper_spec_path(), overrides={"epochs": epochs, "seeds": seeds, "dtype": dtype})
    return [r.config for r in expand(replace(spec, grid=spec.grid[:1]))]


def flops_per_epoch(sizes, n_train, n_eval, batch_size):
    """(training, evaluation) FLOPs of one epoch of one network (see the module docstring)."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    P = sum((a + 1) * b for a, b in layers)
    per_sample = 4 * P + 2 * sum(a * b for a, b in layers[1:])
    steps = -(-n_train // batch_size)
    return per_sample * n_train + 2 * P * steps, 2 * P * n_eval


def epochs_run(history) -> int:
    """Epochs a run actually trained (a diverged run trained its diverging epoch too)."""
    return history.epochs + (1 if history.status == "diverged" else 0)


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the engine's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def matmul_gflops(size=2000, repeat=3) -> float:
    """GFLOP/s of the best of ``repeat`` float64 ``size x size`` products (BLAS as configured)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size ** 3 / best / 1e9


def _seconds(fn, repeat=7, number=20) -> float:
    """CPU seconds per call of ``fn`` (like the engine's CPU figure, without the time a shared
    machine gives to others): the median of ``repeat`` timings of ``number`` calls."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.process_time()
        for _ in range(number):
            fn()
        times.append((time.process_time() - t) / number)
    return sorted(times)[len(times) // 2]


@dataclass
class Floor:
    """A lower bound on the batched engine's CPU time for a grid: only its exps and its matrix
    products, each timed alone at the engine's own shapes (one BLAS thread, arrays in cache,
    the median of repeated timings), with no Python between the calls and no other pass over
    memory."""

    exps: float  # exp calls (elements) the grid needs: its sigmoid / tanh / softmax units
    exp_ns: float  # numpy's exp in the grid's dtype, ns per element
    dtype: str
    exp_s: float
    gemm_s: float  # the engine's matrix products at their measured rates
    gemm_gflops: float  # ... which is this rate on the grid's GEMM FLOPs

    @property
    def cpu_s(self) -> float:
        return self.exp_s + self.gemm_s


TRANSCENDENTAL = ("sigmoid", "tanh", "softmax")


def kernel_floor(results, sizes, n_train, n_eval, batch_size, dtype="float64", run_width=12, stack=60,
                 eval_models=5, eval_rows=360) -> Floor:
    """The :class:`Floor` of a finished grid (``results``: its TrainResults).

    The products are the ones :mod:`sgdlab.engine.batched` makes, per model: each training
    step, the first layer's forward product and gradient as one GEMM for ``run_width`` models
    that share a minibatch, and for every later layer the forward product, the weight gradient
    and the delta (``np.matmul`` over a stack of ``stack`` models); each epoch, the forward
    pass on ``n_eval`` rows in blocks of ``eval_rows`` rows and ``eval_models`` models (the
    defaults are the paper grid's stacks: 60 models, seed blocks of 12, evaluation blocks of 5
    models x 360 rows). The exps are counted as the module docstring says.
    """
    import numpy as np

    from .engine.blas import blas_threads

    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)

    def arr(*shape):
        return rng.standard_normal(shape).astype(dt)

    n_in, h1 = sizes[0] + 1, sizes[1]
    later = list(zip(sizes[1:-1], sizes[2:]))
    with blas_threads(1):
        Xb, W1, Z1 = arr(batch_size, n_in), arr(n_in, run_width * h1), arr(batch_size, run_width * h1)
        G1 = arr(run_width * h1, n_in)
        step = _seconds(lambda: np.matmul(Xb, W1, out=Z1)) + _seconds(lambda: np.matmul(Z1.T, Xb, out=G1))
        step /= run_width
        for fi, fo in later:
            A, W, Z = arr(stack, batch_size, fi + 1), arr(stack, fi + 1, fo), arr(stack, batch_size, fo)
            D = arr(stack, batch_size, fi)
            step += (_seconds(lambda: np.matmul(A, W, out=Z))
                     + _seconds(lambda: np.matmul(A.swapaxes(1, 2), Z, out=W))
                     + _seconds(lambda: np.matmul(Z, W[:, :fi].swapaxes(1, 2), out=D))) / stack
        Xe, We, Ze = arr(eval_rows, n_in), arr(n_in, eval_models * h1), arr(eval_rows, eval_models * h1)
        block = _seconds(lambda: np.matmul(Xe, We, out=Ze))
        for fi, fo in later:
            A, W, Z = arr(eval_models, eval_rows, fi), arr(eval_models, fi, fo), arr(eval_models, eval_rows, fo)
            block += _seconds(lambda: np.matmul(A, W, out=Z))
        per_row = block / (eval_rows * eval_models)
        x = rng.uniform(-40, 40, eval_rows * eval_models * h1).astype(dt)
        out = np.empty_like(x)
        exp_ns = _seconds(lambda: np.exp(x, out=out)) / x.size * 1e9

    steps = -(-n_train // batch_size)
    exps = model_epochs = 0
    for r in results:
        c, epochs = r.config, epochs_run(r.history)
        model_epochs += epochs
        units = (sum(sizes[1:-1]) * (c.activation in TRANSCENDENTAL)
                 + sizes[-1] * (c.output_activation in TRANSCENDENTAL))
        exps += epochs * (n_train + n_eval) * units
    gemm_s = model_epochs * (steps * step + n_eval * per_row)
    f_train, f_eval = flops_per_epoch(sizes, n_train, n_eval, batch_size)
    update = 2 * sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])) * steps  # not a product
    gemm_flop = model_epochs * (f_train - update + f_eval)
    exp_s = exps * exp_ns * 1e-9
    return Floor(exps, exp_ns, dt.name, exp_s, gemm_s, gemm_flop / gemm_s / 1e9)


@dataclass
class BenchResult:
    runs: int
    epochs: int
    workers: str
    batched_s: float
    batched_cpu_s: float
    sample: int
    single_sample_s: float
    single_scaled_s: float
    samples_per_s: float
    gflop: float
    gflops: float
    matmul_gflops: float
    diverged: int
    load: tuple
    single_scaled_cpu_s: float = float("nan")
    floor: Floor | None = None
    n_workers: int = 1
    off_s: float = float("nan")  # the batched grid again with diagnostics off: wall ...
    off_cpu_s: float = float("nan")  # ... and CPU seconds
    single_off_cpu_s: float = float("nan")  # the single-engine sample's CPU seconds with diagnostics off
    single_on_cpu_s: float = float("nan")  # ... and on (unscaled)

    @property
    def ratio(self) -> float:
        return self.single_scaled_s / self.batched_s


def bench(epochs=30, seeds=5, runs_sample=12, dtype="float64", threads=None, matmul_size=2000,
          processes=None) -> BenchResult:
    import numpy as np

    from .data import load_dataset
    from .engine import train
    from .engine.batched import train_many

    if threads:
        parallel, workers, n_workers = {"threads": threads}, f"{threads} thread{'s' * (threads != 1)}", threads
    else:
        processes = processes or os.cpu_count() or 1
        parallel, workers, n_workers = {"processes": processes}, f"{processes} process{'es' * (processes != 1)}", processes
    configs = paper_grid(epochs, seeds, dtype)
    c0 = configs[0]
    data = load_dataset(c0.dataset, c0.split, c0.split_seed, c0.label, c0.scale)
    mm = matmul_gflops(matmul_size)
    train_many(configs[:2], data)  # warm up imports and caches
    load = os.getloadavg()
    t, c = time.perf_counter(), _cpu_seconds()
    train_many(configs, data, diagnostics=False, **parallel)
    off_s, off_cpu = time.perf_counter() - t, _cpu_seconds() - c
    t, c = time.perf_counter(), _cpu_seconds()
    results = train_many(configs, data, **parallel)
    batched_s, batched_cpu = time.perf_counter() - t, _cpu_seconds() - c
    sample_idx = np.unique(np.linspace(0, len(configs) - 1, min(runs_sample, len(configs))).round().astype(int))
    c = _cpu_seconds()
    for i in sample_idx:
        train(configs[i], data, diagnostics=False)
    single_off_cpu = _cpu_seconds() - c
    t, c = time.perf_counter(), _cpu_seconds()
    for i in sample_idx:
        train(configs[i], data)
    single_s, single_cpu = time.perf_counter() - t, _cpu_seconds() - c
    n_train = len(data.y_train)
    n_eval = n_train + len(data.y_val) + len(data.y_test)
    sizes, bs = [data.n_features, *c0.hidden, data.n_classes], c0.batch_size
    f_train, f_eval = flops_per_epoch(sizes, n_train, n_eval, bs)
    done_epochs = sum(epochs_run(r.history) for r in results)
    gflop = done_epochs * (f_train + f_eval) / 1e9
    floor = kernel_floor(results, sizes, n_train, n_eval, bs, dtype)
    return BenchResult(len(configs), epochs, workers, batched_s, batched_cpu, len(sample_idx), single_s,
                       single_s * len(configs) / len(sample_idx), done_epochs * n_train / batched_s, gflop,
                       gflop / batched_s, mm, sum(r.history.status == "diverged" for r in results),
                       tuple(round(x, 2) for x in load), single_cpu * len(configs) / len(sample_idx), floor,
                       n_workers, off_s, off_cpu, single_off_cpu, single_cpu)


def report(r: BenchResult) -> str:
    return "\n".join([
        f"paper grid: {r.runs} runs x {r.epochs} epochs (digits, 64-32-16-10, batch 10, paper mode); "
        f"{r.diverged} diverged",
        f"machine: {os.cpu_count()} cores, load average before the run {r.load[0]} "
        "(shared: timings are noisy)",
        f"batched engine ({r.workers}): {r.batched_s:.2f} s wall, {r.batched_cpu_s:.2f} s CPU "
        "(this process and its workers)",
        f"single engine: {r.single_sample_s:.2f} s for {r.sample} runs -> {r.single_scaled_s:.1f} s for {r.runs} "
        f"(scaled)",
        f"speed-up: {r.ratio:.1f}x wall; per CPU second {r.single_scaled_cpu_s / r.batched_cpu_s:.1f}x "
        f"({r.single_scaled_cpu_s:.1f} s CPU scaled for the single engine)",
        f"throughput: {r.samples_per_s:,.0f} training samples/s",
        f"arithmetic: {r.gflop:.1f} GFLOP -> {r.gflops:.2f} GFLOP/s achieved; one float64 matmul: "
        f"{r.matmul_gflops:.2f} GFLOP/s ({100 * r.gflops / r.matmul_gflops:.0f} %)",
        *_diagnostics_lines(r),
        *([] if r.floor is None else _floor_lines(r)),
    ])


def _diagnostics_lines(r: BenchResult) -> list[str]:
    if r.off_cpu_s != r.off_cpu_s:  # NaN: not measured
        return []
    return [
        f"diagnostics (per-layer, every epoch; on above): batched grid with them off {r.off_s:.2f} s wall, "
        f"{r.off_cpu_s:.2f} s CPU -> on costs {100 * (r.batched_cpu_s / r.off_cpu_s - 1):+.1f} % CPU "
        f"({100 * (r.batched_s / r.off_s - 1):+.1f} % wall); single engine ({r.sample} runs) "
        f"{r.single_off_cpu_s:.2f} s CPU off, {r.single_on_cpu_s:.2f} s on "
        f"({100 * (r.single_on_cpu_s / r.single_off_cpu_s - 1):+.1f} %)",
    ]


def _floor_lines(r: BenchResult) -> list[str]:
    f = r.floor
    wall = f.cpu_s / r.n_workers
    return [
        "floor (the grid's exps and matrix products alone, each timed at the engine's shapes on one core; "
        "no Python, no other passes):",
        f"  {f.exps / 1e9:.2f}e9 {f.dtype} exp at {f.exp_ns:.2f} ns = {f.exp_s:.1f} s CPU; matrix products "
        f"{f.gemm_s:.1f} s CPU ({f.gemm_gflops:.1f} GFLOP/s per core at these shapes)",
        f"  together {f.cpu_s:.1f} s CPU = {wall:.1f} s wall on {r.n_workers} workers, "
        f"{r.gflop / wall:.1f} GFLOP/s ({100 * r.gflop / wall / r.matmul_gflops:.0f} % of the matmul); "
        f"the engine takes {r.batched_cpu_s / f.cpu_s:.2f}x the floor's CPU time",
    ]

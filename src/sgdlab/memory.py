"""Estimate a network's training memory before allocating it, and refuse what cannot fit.

``--layers 100000000`` would otherwise fail deep inside numpy (a MemoryError traceback) or
get the process killed by the kernel. The estimate is a lower bound of what training holds:
the parameters five times over (weights, gradient, velocity, the best epoch's copy, a
temporary) and the activations of the largest pass (a whole split evaluated at once, four
buffers per layer).
"""

from __future__ import annotations

import os

import numpy as np

from .errors import SgdlabError


def training_bytes(sizes, dtype="float64", n_rows: int = 1, runs: int = 1) -> int:
    """A lower bound on the bytes training ``runs`` networks of layer ``sizes`` takes."""
    item = np.dtype(dtype).itemsize
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    acts = max(int(n_rows), 1) * sum(sizes[1:])
    return runs * item * (5 * params + 4 * acts)


def available_bytes() -> int | None:
    """Memory the system can still give (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def check_fits(sizes, dtype="float64", n_rows: int = 1, runs: int = 1, what: str = "the network",
               advice: str = "use smaller --layers (hidden layer sizes)") -> int:
    """:func:`training_bytes`, or :class:`SgdlabError` with the figure if it is more than
    the memory available now; ``advice`` ends the message (the CLI's flag by default)."""
    need = training_bytes(sizes, dtype, n_rows, runs)
    have = available_bytes()
    if have is not None and need > have:
        params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        per = f"{runs} runs at once, " if runs > 1 else ""
        raise SgdlabError(f"{what} ({'-'.join(map(str, sizes))}, {params:,} parameters, {per}{dtype}) needs at "
                          f"least {human(need)} of memory to train; {human(have)} is available: {advice}")
    return need

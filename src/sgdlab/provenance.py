"""Where numbers were computed: CPU model and the instruction-set flags that change float
results (AVX2, AVX-512), numpy and its BLAS. Kept with a study (store ``meta``) and printed
under the README's results table, because chaotic runs differ across such machines."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone

#: CPU flags that decide which kernels numpy and BLAS run (and so the last bits of results)
FLAGS = ("avx2", "fma", "avx512f", "asimd", "sve")


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    have = set(value.split())
                    flags = [fl for fl in FLAGS if fl in have]
    except OSError:
        pass
    return model or "unknown CPU", flags


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info

        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        # numpy's own BLAS (scipy and others may load another copy first, in any order)
        libs.sort(key=lambda i: "numpy" not in str(i.get("filepath", "")))
        if libs:
            b = libs[0]
            arch = f", {b['architecture']} kernels" if b.get("architecture") else ""
            return f"{b.get('internal_api', 'BLAS')} {b.get('version') or ''}{arch}".replace("  ", " ").strip()
    except Exception:  # threadpoolctl missing or failing: fall back on numpy's build record
        pass
    try:
        import numpy as np

        dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{dep.get('name', 'BLAS')} {dep.get('version', '')}".strip()
    except Exception:
        return "unknown BLAS"


def machine() -> dict:
    """This machine: ``cpu``, ``flags`` (of :data:`FLAGS`, those present), ``cores``,
    ``numpy``, ``blas``, ``python``, ``system``, ``when`` (UTC)."""
    import numpy as np

    model, flags = _cpuinfo()
    return {"cpu": model, "flags": flags, "cores": os.cpu_count(), "numpy": np.__version__, "blas": _blas(),
            "python": platform.python_version(), "system": platform.system(),
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def describe(m: dict) -> str:
    """One line: ``AMD EPYC, 2 cores, flags avx2 fma avx512f (no ...); numpy 2.4.6, BLAS openblas ...``."""
    have = m.get("flags") or []
    missing = [f for f in ("avx2", "avx512f") if f not in have] if m.get("system") != "Darwin" else []
    flags = "flags " + (" ".join(have) if have else "none of " + "/".join(FLAGS))
    if missing and have:
        flags += f" (no {', '.join(missing)})"
    return (f"{m.get('cpu', 'unknown CPU')}, {m.get('cores', '?')} cores, {flags}; numpy {m.get('numpy', '?')}, "
            f"BLAS {m.get('blas', '?')}; Python {m.get('python', '?')}")

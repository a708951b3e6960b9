"""Run a study, then render its report: the one composition that ``sgdlab study``,
``sgdlab reproduce`` and :func:`sgdlab.run_study` share.

It sits above both halves, so neither imports the other: :mod:`sgdlab.study` trains and
writes the store (it never plots), :mod:`sgdlab.report` reads the store and renders (it
never trains).
"""

from __future__ import annotations

import shlex
from typing import Callable

from .errors import SgdlabError
from .study.api import StudyResults, as_folder, as_spec, open_study
from .study.runner import StudyRun, execute


def render_report(out, diverged: str = "zero"):
    """Render the report of the study in ``out``; returns :class:`sgdlab.report.Rendered`
    (``report.html``'s path and the Answers lines).

    A crash while rendering leaves the stored results intact; the error says how to retry.
    """
    from .report import build

    out = as_folder(out, "out")
    try:
        return build(out, diverged=diverged)
    except SgdlabError:
        raise
    except Exception as e:
        e.add_note(f"sgdlab: rendering the report failed; the results are stored; retry with: "
                   f"sgdlab report {shlex.quote(str(out))}")
        raise


def run_and_render(spec, out, *, report: bool = True, on_stored: Callable[[StudyRun], None] | None = None,
                   **options) -> tuple[StudyRun, object | None]:
    """Run ``spec`` (a :class:`~sgdlab.study.spec.StudySpec`) into ``out``, then render its report.

    ``options`` go to :func:`sgdlab.study.runner.execute` (jobs, resume, force, engine,
    backend, scheduler, progress, resume_same). ``on_stored(run)`` is called once the
    results are stored, before rendering (the CLI prints its summary there). Returns the
    :class:`~sgdlab.study.runner.StudyRun` and what rendering wrote (a
    :class:`sgdlab.report.Rendered`; None when ``report`` is false).
    """
    run = execute(spec, out, **options)
    if on_stored is not None:
        on_stored(run)
    return run, (render_report(out) if report else None)


def run_study(spec_or_path, out, jobs: int | None = None, resume: bool = False, engine: str = "batched",
              backend: str = "local", progress: bool = True, *, force: bool = False,
              scheduler: str | None = None, report: bool = False) -> StudyResults:
    """Run a study and return its results.

    Parameters
    ----------
    spec_or_path : path, TOML text, dict or StudySpec
        The study (see ``docs/study.md`` for the format); a dict is the parsed TOML.
    out : path
        The study folder; its ``results.sqlite`` is created (or resumed).
    jobs : int, optional
        Local processes (default: all cores); results do not depend on it.
    resume : bool
        Continue a study already in ``out`` (same spec), skipping its finished runs.
    engine : {"batched", "single"}
        ``batched`` trains the runs that share a minibatch schedule together.
    backend : {"local", "dask"}
        ``dask`` needs ``scheduler`` (``tcp://HOST:PORT``) or ``SGDLAB_DASK_SCHEDULER``.
    progress : bool
        Show a progress bar (terminal) or periodic lines (otherwise) on stderr.
    force : bool
        Delete a store already in ``out`` (another study's, or this one's) and start over.
    report : bool
        Render tables, figures and ``report.html`` afterwards (:func:`render_report`).
    """
    for name, value in (("resume", resume), ("progress", progress), ("force", force), ("report", report)):
        if not isinstance(value, bool):
            raise SgdlabError(f"{name}: expected True or False, got {value!r}")
    run_and_render(as_spec(spec_or_path), as_folder(out, "out"), report=report, jobs=jobs, resume=resume, force=force,
                   engine=engine, backend=backend, scheduler=scheduler, progress=progress)
    return open_study(out)

"""Studies: spec, grid expansion, runner, store, analysis.

The public entry point here is :func:`open_study`; :func:`sgdlab.run_study` (in
:mod:`sgdlab.workflow`) runs a spec and renders its report (see ``docs/study.md``).
"""

from .api import StudyResults, open_study
from .records import Cell, RunRecord, run_key
from .spec import StudySpec, load_spec, parse_spec
from .store import Store

__all__ = ["StudyResults", "open_study", "Cell", "RunRecord", "run_key", "StudySpec",
           "load_spec", "parse_spec", "Store"]

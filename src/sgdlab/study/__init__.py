"""Studies: spec, grid expansion, runner, store, analysis.

The public entry points are :func:`run_study` and :func:`open_study` (see ``docs/study.md``).
"""

from .api import StudyResults, open_study, run_study
from .records import Cell, RunRecord, run_key
from .spec import StudySpec, load_spec, parse_spec
from .store import Store

__all__ = ["StudyResults", "open_study", "run_study", "Cell", "RunRecord", "run_key", "StudySpec",
           "load_spec", "parse_spec", "Store"]

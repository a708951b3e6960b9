"""Studies: spec, grid expansion, runner, store, analysis."""

"""Subcommands of the ``sgdlab`` CLI, one module each (see ``sgdlab.cli``)."""

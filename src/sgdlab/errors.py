"""Errors that reach users: one line, naming the bad value and what is valid."""


class SgdlabError(ValueError):
    """A user mistake (bad flag, bad spec, bad file). The CLI prints it as one line, exit 2."""


def choose(kind: str, name: str, registry: dict):
    """Look `name` up in `registry` or raise an error listing the valid names."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(registry))
        raise SgdlabError(f"unknown {kind} {name!r}; valid: {valid}") from None

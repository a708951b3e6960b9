"""The lab's training form: its fields, and a submitted form turned into a :class:`RunConfig`.

A submitted form is parsed by the very parser ``sgdlab train`` uses (its flags, types and
choices) and then by ``RunConfig``, so the page accepts exactly what the command line
accepts and answers a mistake with the same one-line message. On top of that the lab
applies its own limits (bundled datasets only, so no file path reaches the server from the
page; a cap on layers, units and epochs), because a lab serves whoever opens the page.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

from ..config import RunConfig
from ..data import BUNDLED
from ..errors import SgdlabError

# Form field -> the `sgdlab train` flag it stands for, in the order the page shows them.
FIELDS = (("dataset", "--dataset"), ("layers", "--layers"), ("activation", "--activation"),
          ("output", "--output"), ("cost", "--cost"), ("ce_outside", "--ce-outside"), ("init", "--init"),
          ("lr", "--lr"), ("batch_size", "--batch-size"), ("epochs", "--epochs"), ("seed", "--seed"),
          ("dtype", "--dtype"))


@dataclass(frozen=True)
class Limits:
    """What one lab run may ask for (stated on the page)."""

    max_layers: int = 4
    max_units: int = 256
    max_epochs: int = 200

    def text(self) -> str:
        return (f"at most {self.max_layers} hidden layers of at most {self.max_units} units, "
                f"at most {self.max_epochs} epochs, bundled datasets only")

    def check(self, config: RunConfig) -> None:
        """Raise :class:`SgdlabError` (one line) if ``config`` asks for more than the lab allows."""
        if config.dataset not in BUNDLED:
            raise SgdlabError(f"dataset: the lab trains the bundled datasets only: {', '.join(BUNDLED)}; "
                              f"got {config.dataset!r}")
        if len(config.hidden) > self.max_layers or any(h > self.max_units for h in config.hidden):
            raise SgdlabError(f"layers: the lab allows at most {self.max_layers} hidden layers of at most "
                              f"{self.max_units} units, got {','.join(map(str, config.hidden))}")
        if config.epochs > self.max_epochs:
            raise SgdlabError(f"epochs: the lab allows at most {self.max_epochs}, got {config.epochs}")


class _FormParser(argparse.ArgumentParser):
    """The train command's parser, raising the message argparse would print instead of exiting."""

    def error(self, message):
        raise SgdlabError(message)


def train_parser() -> argparse.ArgumentParser:
    """A fresh copy of ``sgdlab train``'s argument parser (built by its own ``register``)."""
    from ..commands import train as train_command

    root = _FormParser(prog="sgdlab")
    sub = root.add_subparsers(dest="command", parser_class=_FormParser)
    train_command.register(sub)
    return sub.choices["train"]


def schema(limits: Limits) -> dict:
    """The form as the page draws it: each field's flag, choices, default and help, and the limits."""
    actions = {opt: a for a in train_parser()._actions for opt in a.option_strings}
    fields = []
    for name, flag in FIELDS:
        a = actions[flag]
        default = ",".join(map(str, a.default)) if name == "layers" else a.default
        choices = list(a.choices) if a.choices is not None else None
        help_text = (a.help or "").replace("%(default)s", str(default))
        if name == "dataset":
            choices, help_text = list(BUNDLED), "a bundled dataset (digits: the paper's 8x8 images)"
        fields.append({"name": name, "flag": flag, "choices": choices, "default": default, "help": help_text})
    return {"fields": fields, "limits": {**asdict(limits), "text": limits.text()}}


def config_from_form(form: dict, limits: Limits) -> RunConfig:
    """Validate a submitted form (field name -> text) into a RunConfig.

    Raises :class:`SgdlabError` with the command line's own message for a bad value, or the
    lab's for a value over its limits. Fields left out take the command line's defaults.
    """
    from ..commands.common import config_from_args

    if not isinstance(form, dict):
        raise SgdlabError("the form must be a JSON object of field: value")
    known = dict(FIELDS)
    argv = []
    for name, value in form.items():
        if name not in known:
            raise SgdlabError(f"unknown field {name!r}; valid: {', '.join(known)}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SgdlabError(f"{name}: expected a text or a number, got {value!r}")
        argv.append(f"{known[name]}={value}")  # FLAG=VALUE: a value starting with '-' stays a value
    args = train_parser().parse_args(argv)
    if args.dataset not in BUNDLED:  # before RunConfig: never touch a path given by the page
        limits.check(RunConfig(dataset=args.dataset))
    config = config_from_args(args)
    limits.check(config)
    return config

"""The ``sgdlab`` command line.

Each subcommand lives in ``sgdlab/commands/<name>.py`` with ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``. A user mistake anywhere raises
:class:`SgdlabError`; ``main`` prints it as one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import SgdlabError

COMMANDS = ("train", "predict", "gradcheck", "study", "reproduce", "report", "bench", "compare", "lab", "rerun")


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit 2) instead of usage + error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    from ._version import __version__

    parser = Parser(prog="sgdlab", description="A neural-network laboratory: minibatch SGD, costs, "
                    "activations and initialisation on numpy.")
    parser.add_argument("--version", action="version", version=f"sgdlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SgdlabError as e:
        print(f"sgdlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sgdlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sgdlab predict ... | head`: the reader left early; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a safety net: a full disk or read-only place met outside the checked paths
        from .outdir import WRITE_ERRORS, write_error

        if e.errno not in WRITE_ERRORS:
            raise
        print(f"sgdlab: error: {write_error(e.filename or 'the output folder', e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

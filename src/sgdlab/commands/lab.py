"""``sgdlab lab``: the local web lab (see docs/lab.md)."""

from __future__ import annotations

from .common import argtype, path_arg, positive_int

port_number = argtype(int, lambda v: 0 <= v <= 65535, "a port number 0-65535 (0: any free port)")


def register(sub):
    p = sub.add_parser("lab", help="a local web lab: change a setting, watch the network learn",
                       description="Start a local web lab on the real engine and print its address. "
                                   "Train from a form and watch each epoch; browse the studies under --store.")
    p.add_argument("--port", type=port_number, default=8000, help="port (default: 8000; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1; any other prints a warning)")
    p.add_argument("--store", type=path_arg, default="results", metavar="DIR",
                   help="folder whose study folders (each with a results.sqlite) are shown (default: results)")
    p.add_argument("--workers", type=positive_int, default=1, help="trainings at the same time (default: 1)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..errors import SgdlabError
    from ..lab.server import serve

    if Path(args.store).exists() and not Path(args.store).is_dir():  # a missing one is fine: no studies yet
        raise SgdlabError(f"--store: {args.store} is not a folder; give the folder that holds your study folders "
                          "(default: results)")
    return serve(args.store, args.host, args.port, workers=args.workers)

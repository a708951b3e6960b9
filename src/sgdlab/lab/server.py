"""Serving the lab with uvicorn: loopback by default, a warning otherwise, a clean Ctrl-C."""

from __future__ import annotations

import ipaddress
import socket
import sys

from ..errors import SgdlabError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(store="results", host: str = "127.0.0.1", port: int = 8000, *, workers: int = 1,
          grace: float = 10.0, out=None) -> int:
    """Run the lab until interrupted; prints its address (and a warning off loopback).

    Ctrl-C (or SIGTERM) cancels the running training, ends every open stream and stops
    the server; the exit code is 0.
    """
    import uvicorn

    from .app import create_app

    out = out or sys.stdout
    loopback = is_loopback(host)
    hosts = None if loopback else ["*"]
    app = create_app(store, workers=workers, grace=grace, allowed_hosts=hosts)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            # End the streams and the training first, so the graceful shutdown has nothing to wait for.
            app.state.begin_shutdown()
            super().handle_exit(sig, frame)

        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:
                addr = self.servers[0].sockets[0].getsockname() if self.servers else (host, port)
                shown = f"[{addr[0]}]" if ":" in str(addr[0]) else addr[0]
                print(f"sgdlab lab: http://{shown}:{addr[1]}/  (studies from {app.state.studies.store}; "
                      "Ctrl-C stops)", file=out, flush=True)

    sock = _bind(host, port)  # first: a bad --host is one line, without the warning before it
    if not loopback:
        print(f"sgdlab lab: warning: listening on {host}, not loopback: anyone who can reach this machine "
              "can use the lab and start trainings on it", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=3, lifespan="on")
    server = Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, once it has shut down
        pass
    finally:
        sock.close()
    print("sgdlab lab: stopped", file=out, flush=True)
    return 0


def _bind(host: str, port: int):
    """The listening socket, or one line saying why there is none (port taken, bad address)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise SgdlabError(f"--host: cannot resolve {host!r} ({e.strerror})") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise SgdlabError(f"cannot listen on {host}:{port} ({e.strerror or e}); try another --port, "
                          "or --port 0 for any free one") from None
    sock.set_inheritable(True)
    return sock

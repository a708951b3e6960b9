"""The lab's web app (Starlette): the page, its JSON API, and Server-Sent Event streams.

The routes are listed at the end of :func:`create_app` (and in ``docs/lab.md``). A bad
request is answered with one line, ``{"error": ...}``: 404 for a run, study, stored run or
report the lab does not have, 400 for any other mistake.
"""

from __future__ import annotations

import asyncio
import json
import math
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import SgdlabError
from . import training
from .form import Limits, config_from_form, schema
from .jobs import JobManager, describe
from .progress import ProgressHub
from .studies import Studies, UnknownStudy

HERE = Path(__file__).parent
STATIC = HERE / "static"
VENDOR = HERE.parent / "assets" / "vendor"
KEEPALIVE = 5.0  # seconds between SSE comments on a quiet stream (finds closed tabs)
# The page loads only its own files; no inline script, nothing from elsewhere.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1", "testserver"]


class _NotFound(SgdlabError):
    """A run or report the lab does not have (answered with 404, as :class:`UnknownStudy` is)."""


def _clean(o):
    """``o`` with every non-finite float as None (JSON has no NaN)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def _json(obj, status: int = 200) -> JSONResponse:
    return JSONResponse(_clean(obj), status_code=status)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _sse(event: dict) -> str:
    return f"id: {event['seq']}\ndata: {json.dumps(_clean(event), allow_nan=False)}\n\n"


def _event_stream(lines) -> StreamingResponse:
    return StreamingResponse(lines, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _require_json(request: Request, what: str) -> None:
    # a cross-site HTML form cannot send JSON: this keeps other sites from starting runs
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise SgdlabError(f"send the {what} as application/json")


def create_app(store="results", *, limits: Limits | None = None, workers: int = 1, grace: float = 10.0,
               allowed_hosts=None, run=None) -> Starlette:
    """The lab as an ASGI app.

    Parameters
    ----------
    store : path
        The folder whose sub-folders holding a ``results.sqlite`` are the studies shown.
    limits : Limits
        Caps on what one training may ask for (default: :class:`Limits()`).
    workers : int
        Trainings run at the same time (default 1; the rest queue).
    grace : float
        Seconds a training may go unwatched (its page closed) before it is cancelled.
    allowed_hosts : list of str
        Host headers accepted (default: loopback names only); guards against DNS rebinding.
    run : callable
        The training function (default :func:`sgdlab.lab.training.run`).
    """
    limits = limits or Limits()
    manager = JobManager(run or training.run, workers=workers, grace=grace)
    studies = Studies(store)
    hub = ProgressHub(studies)
    form_schema = schema(limits)

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def get_schema(request):
        return _json({**form_schema, "store": str(studies.store), "workers": workers, "grace_s": grace})

    def job_info(job):
        return {"id": job.id, "label": job.label, "state": job.state, "position": manager.position(job),
                "source": job.source, "config": job.config.to_dict(), "events": len(job.events)}

    async def submit(request):
        _require_json(request, "form")
        try:
            form = await request.json()
        except ValueError:
            raise SgdlabError("the request body is not valid JSON") from None
        return _json(job_info(manager.submit(config_from_form(form, limits))), 202)

    def find_job(request):
        job = manager.get(request.path_params["job"])
        if job is None:
            raise _NotFound("no such run")
        return job

    async def job_status(request):
        return _json(job_info(find_job(request)))

    async def cancel(request):
        job = find_job(request)
        manager.cancel(job, "stopped from the page")
        return _json(job_info(job))

    async def job_events(request):
        job = find_job(request)
        try:
            start = max(0, int(request.headers.get("last-event-id") or request.query_params.get("last", "-1")) + 1)
        except ValueError:
            start = 0

        async def stream():
            with manager.following(job) as wake:
                i = start
                yield "retry: 2000\n\n"
                while True:
                    wake.clear()
                    events, finished = manager.events_since(job, i)
                    for e in events:
                        yield _sse(e)
                        i = e["seq"] + 1
                        if e["type"] == "end":
                            return
                    if (finished and not events) or manager.closed:
                        return
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=KEEPALIVE)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"

        return _event_stream(stream())

    async def queue(request):
        return _json({"jobs": manager.snapshot(), "workers": workers})

    def list_studies(request):
        return _json({"store": str(studies.store), "studies": studies.summary()})

    def study(request):
        name = request.path_params["name"]
        return _json({**studies.progress(name), "answers": studies.answers(name)})

    async def study_events(request):
        name = request.path_params["name"]
        if name not in studies.names():
            raise _NotFound(f"no study {name!r}")

        async def stream():
            n = 0
            async for value in hub.follow(name):
                if value is None:
                    yield ": keep-alive\n\n"
                    continue
                yield _sse({"seq": n, **value})
                n += 1
            yield "event: close\ndata: {}\n\n"

        return _event_stream(stream())

    def study_runs(request):
        return _json({"runs": studies.runs(request.path_params["name"])})

    def study_run(request):
        return _json(studies.run(request.path_params["name"], request.path_params["key"]))

    def rerun(request):
        name, key = request.path_params["name"], request.path_params["key"]
        _require_json(request, "request")
        record = studies.record(name, key)
        limits.check(record.config)
        job = manager.submit(record.config, f"rerun of {name}/{key[:12]}: {describe(record.config)}",
                             {"study": name, "key": key})
        return _json(job_info(job), 202)

    def report(request):
        folder = studies.folder(request.path_params["name"])
        page = folder / "report.html"
        if not page.is_file():
            raise _NotFound(f"study {folder.name!r} has no report.html yet (sgdlab report {folder})")
        return FileResponse(page, media_type="text/html")

    def begin_shutdown():
        hub.close()
        manager.close()

    def shutdown():
        begin_shutdown()
        manager.join(timeout=5.0)

    @asynccontextmanager
    async def lifespan(app):
        yield
        shutdown()

    def not_found(request, exc):
        return _error(str(exc), 404)

    def bad_request(request, exc):
        return _error(str(exc))

    routes = [
        Route("/", index),  # the page (static/index.html)
        Route("/api/schema", get_schema),  # the form's fields (from `sgdlab train`'s parser), the limits
        Route("/api/runs", submit, methods=["POST"]),  # queue a training (JSON form) -> 202 {id, position, ...}
        Route("/api/runs/{job}", job_status),  # a job's state and queue position
        Route("/api/runs/{job}/events", job_events),  # SSE: queued..., start, epoch..., end
        Route("/api/runs/{job}/cancel", cancel, methods=["POST"]),
        Route("/api/queue", queue),  # every job the lab remembers
        Route("/api/studies", list_studies),  # the studies under the store, with their progress
        Route("/api/studies/{name}", study),  # one study's progress and answers so far
        Route("/api/studies/{name}/events", study_events),  # the same as SSE while the study runs
        Route("/api/studies/{name}/runs", study_runs),  # its stored runs, one row each
        Route("/api/studies/{name}/runs/{key}", study_run),  # one run's config and per-epoch curves
        Route("/api/studies/{name}/runs/{key}/rerun", rerun, methods=["POST"]),  # retrain it live
        Route("/studies/{name}/report.html", report),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Mount("/vendor", StaticFiles(directory=VENDOR), name="vendor"),
    ]
    hosts = _LOOPBACK_HOSTS if allowed_hosts is None else list(allowed_hosts)
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts), Middleware(_Headers)],
                    exception_handlers={SgdlabError: bad_request, UnknownStudy: not_found, _NotFound: not_found})
    app.state.manager, app.state.studies, app.state.hub, app.state.limits = manager, studies, hub, limits
    app.state.shutdown, app.state.begin_shutdown = shutdown, begin_shutdown
    return app


class _Headers:
    """Adds the page's security headers (CSP on the lab's own pages, no sniffing everywhere)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append("x-content-type-options", "nosniff")
                if not path.startswith("/studies/"):  # a study's report is its own self-contained page
                    headers.append("content-security-policy", CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)

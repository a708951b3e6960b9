"""Live progress of a study for any number of pages: one poller per followed study.

However many pages watch a study, its store is read once per ``period`` (in a worker
thread, read-only) and each page gets the result when it changes. The "answers so far"
(best cells per mode), which read every stored run, are refreshed at most every
``answers_period`` seconds (see :meth:`Studies.answers`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import anyio

from ..errors import SgdlabError


@dataclass(eq=False)
class _Watch:
    followers: int = 0
    value: dict | None = None
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class ProgressHub:
    def __init__(self, studies, period: float = 1.0, answers_period: float = 5.0, keepalive: float = 10.0):
        self.studies, self.period, self.answers_period, self.keepalive = studies, period, answers_period, keepalive
        self._watches: dict[str, _Watch] = {}
        self.closed = False

    def _compute(self, name: str) -> dict:
        try:
            return {**self.studies.progress(name), "answers": self.studies.answers(name, max_age=self.answers_period)}
        except SgdlabError as e:
            return {"name": name, "error": str(e)}

    async def _poll(self, name: str, w: _Watch) -> None:
        try:
            while not self.closed and w.followers > 0:
                value = await anyio.to_thread.run_sync(self._compute, name)
                if value != w.value:
                    w.value, w.version = value, w.version + 1
                    old, w.changed = w.changed, asyncio.Event()
                    old.set()
                if value.get("error") or value.get("state") == "finished":
                    return
                await asyncio.sleep(self.period)
        finally:
            if self._watches.get(name) is w:
                del self._watches[name]
            w.changed.set()

    async def follow(self, name: str):
        """Yield the study's progress (a dict) whenever it changes, ``None`` as a keep-alive;
        ends when the study has finished, on an error, or when the lab shuts down."""
        w = self._watches.get(name)
        if w is None:
            w = self._watches[name] = _Watch()
            w.task = asyncio.create_task(self._poll(name, w))  # starts once this follower waits
        w.followers += 1
        seen, quiet = 0, 0.0
        try:
            while not self.closed:
                if w.version != seen:  # _poll has set a new value
                    seen, quiet = w.version, 0.0
                    yield w.value
                    if w.value.get("error") or w.value.get("state") == "finished":
                        return
                if w.task.done() and w.version == seen:
                    return
                try:
                    await asyncio.wait_for(w.changed.wait(), timeout=1.0)  # wake every second to see `closed`
                except asyncio.TimeoutError:
                    quiet += 1.0
                    if quiet >= self.keepalive:
                        quiet = 0.0
                        yield None
        finally:
            w.followers -= 1

    def close(self) -> None:
        self.closed = True

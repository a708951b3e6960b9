"""One writer per study folder: an exclusive ``flock`` on ``DIR/.sgdlab.lock``.

The lock file holds the holder's PID and command, so a second ``sgdlab study`` (or
``report``) on the same folder is refused with one line naming the running process. The
kernel drops the lock when the holder exits, however it exits (SIGKILL included), so a
stale lock file never blocks anyone.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from ..errors import SgdlabError
from ..outdir import LOCK_NAME, write_error


class FolderLock:
    """``with FolderLock(dir, "study"):`` holds the folder's lock or raises :class:`SgdlabError`."""

    def __init__(self, folder, what: str = "sgdlab"):
        self.path = Path(folder) / LOCK_NAME
        self.what = what
        self._fd = None

    def acquire(self) -> "FolderLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise write_error(self.path.parent, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 400, 0).decode(errors="replace").strip() or "unknown process"
            finally:
                os.close(fd)
            raise SgdlabError(f"{self.path.parent} is in use by another sgdlab ({holder}); wait for it to end, "
                              "or use another folder") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {self.what} {' '.join(sys.argv[1:3])}".strip().encode()[:400], 0)
        except OSError:
            pass  # the lock holds even if its note cannot be written (full disk)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

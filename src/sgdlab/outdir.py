"""Output folders: sgdlab deletes or overwrites only files it recorded as its own.

A study folder holds ``.sgdlab-manifest.json``, the list of files sgdlab wrote there
(the store, the lock file, every table, figure and report). sgdlab writes into a folder
only if it is new, empty, or already holds that manifest; a folder of an older sgdlab
(nothing in it but a store and what a rendering writes) is adopted. Rendering deletes only
files listed in the manifest, and refuses, naming the file, when the places it writes
(``tables/``, ``figures/``, ``report.md``, ``report.html``) hold a file that is not.

A study's ``name`` becomes its default folder (``results/<name>``), so it must be a plain
name: :func:`check_name`.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

from .errors import SgdlabError

MANIFEST = ".sgdlab-manifest.json"
LOCK_NAME = ".sgdlab.lock"
STORE_FILES = ("results.sqlite", "results.sqlite-wal", "results.sqlite-shm", "results.sqlite-journal")
RENDER_DIRS = ("tables", "figures")
RENDER_FILES = ("report.md", "report.html")
# Kinds of file a rendering writes into RENDER_DIRS: another file of these kinds there that
# sgdlab did not write could be overwritten, so rendering refuses; other files are left alone.
RENDER_SUFFIXES = (".md", ".csv", ".png", ".svg", ".html", ".json", ".pdf")
# What a folder written by an sgdlab without manifests may hold at its top level.
_LEGACY_TOP = {*STORE_FILES, *RENDER_DIRS, *RENDER_FILES, "compare", LOCK_NAME}


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is a plain folder name (no path separator, not ``.``/``..``, no
    leading dot, no control character), else :class:`SgdlabError`."""
    bad = (not name or name != name.strip() or "/" in name or "\\" in name or name.startswith(".")
           or os.path.isabs(name) or any(ord(c) < 32 for c in name))
    if bad:
        raise SgdlabError(f"{what}: {name!r} is not a plain folder name (it becomes results/<name>): use letters, "
                          "digits, '-', '_' or spaces, no '/', '\\' or leading '.'")
    return name


def _files_under(root: Path, rel: str) -> list[str]:
    p = root / rel
    if p.is_file():
        return [rel]
    if not p.is_dir():
        return []
    return sorted(q.relative_to(root).as_posix() for q in p.rglob("*") if q.is_file() or q.is_symlink())


def _rendered(rel: str) -> bool:
    return rel.split("/")[0] in RENDER_DIRS or rel in RENDER_FILES


class OutDir:
    """The output folder ``path`` and the files sgdlab owns in it."""

    def __init__(self, path):
        self.path = Path(path)
        self.owned: set[str] = set()
        self.pending: list[str] | None = None  # the files present when a rendering began

    # ------------------------------------------------------------------ manifest

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    def _read(self) -> set[str]:
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
            files = data["files"]
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise TypeError("files is not a list of names")
            pending = data.get("pending")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SgdlabError(f"{self.manifest}: damaged ({type(e).__name__}: {e}); sgdlab will not write in "
                              f"{self.path} until it is fixed or removed") from None
        files = set(files)
        if isinstance(pending, list):
            # A rendering was stopped part-way (killed, disk full): what it wrote is ours.
            files |= set(self._rendered_files()) - set(pending)
        return files

    def save(self) -> None:
        """Write the manifest atomically (a temp file renamed over it)."""
        data = {"format": "sgdlab-output", "version": 1, "files": sorted(self.owned)}
        if self.pending is not None:
            data["pending"] = self.pending
        text = json.dumps(data, indent=1)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".sgdlab-manifest.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            os.replace(tmp, self.manifest)
        except OSError as e:
            raise write_error(self.path, e) from None

    def add(self, *rels: str) -> None:
        new = set(rels) - self.owned
        if new:
            self.owned |= new
            self.save()

    # ------------------------------------------------------------------ claiming

    def claim(self) -> "OutDir":
        """Make sure sgdlab may write here: create the folder, or accept an empty one, one
        holding a manifest, or an older sgdlab's study folder; otherwise refuse."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise SgdlabError(f"{p} exists and is not a folder; choose another output folder")
        if self.manifest.is_file():
            self.owned = self._read()
            return self
        entries = []
        if p.is_dir():
            try:
                for e in p.iterdir():
                    if e.name.startswith(".sgdlab-manifest.") and e.name.endswith(".tmp"):
                        e.unlink(missing_ok=True)  # a manifest write that was killed: ours by its name
                    else:
                        entries.append(e)
            except OSError as e:
                raise SgdlabError(f"cannot read the folder {p} ({e.strerror or e})") from None
            if entries and not self._legacy(entries):
                shown = ", ".join(sorted(e.name for e in entries)[:3]) + (", ..." if len(entries) > 3 else "")
                raise SgdlabError(f"{p} is not empty ({shown}) and holds no {MANIFEST}: sgdlab writes only into a "
                                  "new or empty folder, or one it made; choose another output folder")
        else:
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise write_error(p, e) from None
        self.owned = set()
        if entries and (p / "results.sqlite").is_file():  # its tables and figures came with its store
            for rel in (*STORE_FILES, *RENDER_FILES, *RENDER_DIRS, LOCK_NAME):
                self.owned.update(f for f in _files_under(p, rel) if rel not in RENDER_DIRS
                                  or Path(f).suffix.lower() in RENDER_SUFFIXES)
        self.save()
        return self

    def _legacy(self, entries) -> bool:
        """A folder an sgdlab without manifests made: only names sgdlab writes (a store,
        compare/, tables/ and figures/ of rendered files, the report)."""
        names = {e.name for e in entries}
        if not names <= _LEGACY_TOP or not ("results.sqlite" in names or names <= {"compare"}):
            return False
        for d in RENDER_DIRS:
            q = self.path / d
            if q.is_symlink() or (q.exists() and not q.is_dir()):
                return False
        return all(f.is_file() and not f.is_symlink() and f.suffix.lower() in RENDER_SUFFIXES
                   for d in RENDER_DIRS if (self.path / d).is_dir() for f in (self.path / d).iterdir())

    # ------------------------------------------------------------------ rendering

    def begin_render(self) -> set[str]:
        """Before a rendering: refuse if ``tables/``, ``figures/`` or the report files hold a
        file sgdlab did not write; delete the files an earlier rendering wrote. Returns the
        files present now (see :meth:`finish_render`)."""
        foreign = [f for f in self._rendered_files()
                   if f not in self.owned and Path(f).suffix.lower() in RENDER_SUFFIXES]
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise SgdlabError(f"{self.path / foreign[0]}{more} was not written by sgdlab; rendering would overwrite "
                              "or delete it there: move it away, or render into another folder")
        for rel in sorted(self.owned):
            if _rendered(rel):
                try:
                    (self.path / rel).unlink(missing_ok=True)
                except OSError as e:
                    raise write_error(self.path, e) from None
        before = set(self._rendered_files())
        self.pending = sorted(before)
        self.save()
        return before

    def finish_render(self, before: set[str]) -> None:
        """Record every file the rendering wrote (all files new since :meth:`begin_render`)."""
        now = set(self._rendered_files())
        self.owned = {r for r in self.owned if r in now or not _rendered(r)} | (now - before)
        self.pending = None
        self.save()

    def _rendered_files(self) -> list[str]:
        # only where a rendering writes: the store, compare/ and the user's files are not its
        return [f for rel in (*RENDER_DIRS, *RENDER_FILES) for f in _files_under(self.path, rel)]


#: the errors of a place that cannot be written (the CLI turns these into one line wherever met)
WRITE_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "permission denied"}


def write_error(where, e: OSError) -> SgdlabError:
    """An OSError while writing under ``where`` as one line (full disk, read-only, no permission)."""
    return SgdlabError(f"cannot write in {where}: {WRITE_ERRORS.get(e.errno, e.strerror or str(e))}")

"""Atomic, incremental output: each build is a folder of its own, switched into place at once.

Layout, for ``--out /srv/www/veille``::

    /srv/www/veille -> .veille.builds/20261123T070012-3fa2b1    (a relative symlink)
    /srv/www/.veille.builds/20261123T070012-3fa2b1/             the live site
    /srv/www/.veille.builds/20261123T070012-3fa2b1.json         its manifest (not served)
    /srv/www/.veille.builds/20261116T070009-91c0d4/             the build before (kept)
    /srv/www/.veille.builds/.lock                               one build at a time

A build never touches the live folder. It prepares another one: the build
before the live one is recycled (its manifest removed first, so that a
half-updated folder is never trusted), or a new folder is made. For each file
the manifests say whether the inputs changed: a file already right in the
recycled folder stays, a file right in the live build is hard-linked from it,
any other file is rendered. Files are only ever replaced through a rename,
never changed in place, so a file shared with the live build through a hard
link cannot be altered. When the folder is complete its manifest is written
and the symlink is replaced by a new one with ``rename(2)``, which is atomic:
a reader, or a kill at any moment, sees the old site or the new one, never
half of each. Folders of killed builds are removed by the next build.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pressreview.errors import Conflict, UsageError

MANIFEST_FORMAT = 1
LOCK_WAIT_SECONDS = 120.0


def builds_dir_for(out: Path) -> Path:
    return out.parent / f".{out.name}.builds"


def live_build(out: Path) -> Path | None:
    """The build folder ``out`` points at, or None when there is none yet.

    Raises UsageError when ``out`` exists and was not made by this builder.
    """
    builds = builds_dir_for(out)
    if out.is_symlink():
        target = Path(os.path.normpath(out.parent / os.readlink(out)))
        if target.parent != builds:
            raise UsageError(
                f"{out} is a symbolic link to {target}, not to an archive build; "
                "remove it or choose another output folder"
            )
        return target if target.is_dir() else None
    if out.is_dir():
        if any(out.iterdir()):
            raise UsageError(
                f"{out} is a folder that was not made by `pressreview archive build`; "
                "remove it or choose another output folder (--out)"
            )
        return None
    if out.exists():
        raise UsageError(f"{out} is a file; choose another output folder (--out)")
    return None


class SiteSwap:
    """The folder of the next build of ``out``, with the live build to reuse files from."""

    def __init__(self, out: Path):
        self.out = Path(os.path.abspath(out))
        self.builds = builds_dir_for(self.out)
        self.build_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        self.dir = self.builds / self.build_id
        self.live: Path | None = None
        #: The live build's manifest (what can be linked from it).
        self.previous_manifest: dict[str, Any] = {}
        #: The recycled folder's manifest (what is already in place).
        self.base_manifest: dict[str, Any] = {}
        self._lock_file: Any = None
        self.committed = False
        self.written = 0
        self.reused = 0
        self.reused_trees = 0
        self.kept = 0
        self._cleanup_threads: list[threading.Thread] = []
        self._made: set[str] = set()

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> SiteSwap:
        self.builds.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self.live = live_build(self.out)
            self.previous_manifest = self._read_manifest(self.live)
            self._prepare_folder()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self.committed:
                shutil.rmtree(self.dir, ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    self.manifest_path(self.dir).unlink()
        finally:
            self._unlock()

    def _lock(self) -> None:
        self._lock_file = open(self.builds / ".lock", "a+")  # noqa: SIM115 - held until __exit__
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._lock_file.close()
                    self._lock_file = None
                    raise Conflict(
                        f"another archive build of {self.out} is running; "
                        "wait for it to finish and try again"
                    ) from None
                time.sleep(0.2)

    def _unlock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # -- manifests -------------------------------------------------------------

    def manifest_path(self, build: Path) -> Path:
        return build.with_name(build.name + ".json")

    def _read_manifest(self, build: Path | None) -> dict[str, Any]:
        if build is None:
            return {}
        try:
            data = json.loads(self.manifest_path(build).read_text("utf-8"))
        except (OSError, ValueError):
            return {}  # no usable manifest: nothing is reused from this build
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            return {}
        return data

    def _prepare_folder(self) -> None:
        """Recycle the newest complete build that is not live; remove the others."""
        candidates: list[Path] = []
        doomed: list[Path] = []
        for entry in self.builds.iterdir():
            if entry.name.startswith(".") or entry == self.live:
                continue
            if entry.is_dir():
                if self.manifest_path(entry).exists():
                    candidates.append(entry)
                else:  # killed before its manifest was written
                    doomed.append(entry)
            elif entry.name.endswith(".tmp") or (
                entry.suffix == ".json" and not entry.with_suffix("").is_dir()
            ):  # an unfinished manifest, or the manifest of a removed folder
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
        candidates.sort(key=lambda p: p.name, reverse=True)
        recycled: Path | None = None
        for candidate in candidates:
            manifest = self._read_manifest(candidate) if recycled is None else {}
            if recycled is None and manifest:
                # The manifest goes first: a folder being changed is never trusted.
                self.manifest_path(candidate).unlink()
                os.replace(candidate, self.dir)
                self.base_manifest = manifest
                recycled = candidate
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.manifest_path(candidate).unlink()
                doomed.append(candidate)
        if recycled is None:
            self.dir.mkdir()
        self._throw_away(doomed)
        self._throw_away([e for e in self.builds.iterdir() if e.name.startswith(".trash-")])

    # -- files -----------------------------------------------------------------

    def plan(self, path: str, new_hash: str) -> str:
        """``"keep"`` (already right here), ``"link"`` (from the live build) or ``"render"``."""
        if (
            self._hash(self.base_manifest, "outputs", path) == new_hash
            and (self.dir / path).is_file()
        ):
            return "keep"
        if (
            self.live is not None
            and self._hash(self.previous_manifest, "outputs", path) == new_hash
            and (self.live / path).is_file()
        ):
            return "link"
        return "render"

    def keep(self, path: str) -> None:
        """``path`` is already right in the recycled folder: nothing to do."""
        self.reused += 1
        self.kept += 1

    def link(self, path: str) -> None:
        """Hard-link ``path`` from the live build (a copy where links are not possible)."""
        if self.live is None:  # pragma: no cover - plan() says "link" only with a live build
            raise ValueError("no live build to link from")
        source = self.live / path
        target = self._parent_of(path)
        tmp = target.with_name(f".{target.name}.{self.build_id}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copy2(source, tmp)
        os.replace(tmp, target)
        self.reused += 1

    def write(self, path: str, data: bytes) -> None:
        """A new file at ``path`` (written aside, then renamed over any old one)."""
        target = self._parent_of(path)
        tmp = target.with_name(f".{target.name}.{self.build_id}.tmp")
        with open(tmp, "wb") as handle:  # a new inode, never one shared with the live build
            handle.write(data)
        os.replace(tmp, target)
        self.written += 1

    def remove_stale(self, paths: set[str]) -> None:
        """Files of the recycled folder that the new build does not have."""
        outputs = self.base_manifest.get("outputs")
        for path in outputs if isinstance(outputs, dict) else ():
            if path not in paths:
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / path).unlink()
                parent = (self.dir / path).parent
                while parent != self.dir:
                    try:
                        parent.rmdir()  # only when empty
                    except OSError:
                        break
                    parent = parent.parent

    def reuse_tree(self, path: str, section: str, new_hash: str) -> bool:
        """A whole folder (a search volume): kept, linked from the live build, or cleared.

        Returns False when the folder is empty and must be made again.
        """
        target = self.dir / path
        if self._hash(self.base_manifest, section, path) == new_hash and target.is_dir():
            self.reused_trees += 1
            return True
        if target.exists():
            shutil.rmtree(target)
        source = self.live / path if self.live else None
        if (
            source is None
            or self._hash(self.previous_manifest, section, path) != new_hash
            or not source.is_dir()
        ):
            return False

        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        shutil.copytree(source, target, copy_function=link)
        self.reused_trees += 1
        return True

    def remove_stale_trees(self, section: str, paths: set[str]) -> None:
        trees = self.base_manifest.get(section)
        for path in trees if isinstance(trees, dict) else ():
            if path not in paths:
                shutil.rmtree(self.dir / path, ignore_errors=True)
                with contextlib.suppress(OSError):
                    (self.dir / path).parent.rmdir()  # only when empty

    @staticmethod
    def _hash(manifest: dict[str, Any], section: str, key: str) -> str | None:
        values = manifest.get(section)
        value = values.get(key) if isinstance(values, dict) else None
        return value if isinstance(value, str) else None

    def _parent_of(self, path: str) -> Path:
        """The target of ``path`` in the new build, its folder created."""
        target = self.dir / path
        parent = str(target.parent)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        return target

    # -- switching -------------------------------------------------------------

    def commit(self, manifest: dict[str, Any]) -> None:
        """Write the manifest, then point ``out`` at the new build in one rename."""
        manifest = {"format": MANIFEST_FORMAT, "build": self.build_id, **manifest}
        manifest_path = self.manifest_path(self.dir)
        tmp = manifest_path.with_name(manifest_path.name + ".tmp")
        tmp.write_text(json.dumps(manifest, separators=(",", ":")), "utf-8")
        os.replace(tmp, manifest_path)
        if self.out.is_dir() and not self.out.is_symlink():
            self.out.rmdir()  # empty (checked on entry): nothing is served from it
        link = self.out.with_name(f".{self.out.name}.swap-{self.build_id}")
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.symlink(os.path.relpath(self.dir, self.out.parent), link)
        os.replace(link, self.out)
        self.committed = True
        _fsync_dir(self.out.parent)

    # -- removing old builds -----------------------------------------------------

    def _throw_away(self, folders: list[Path]) -> None:
        """Rename folders out of the way at once, delete them in a background thread.

        Removing thousands of files is slow on some disks; ``wait_for_cleanup``
        joins the thread. Remains of an interrupted removal go at the next build.
        """
        doomed: list[Path] = []
        for folder in folders:
            trash = (
                folder
                if folder.name.startswith(".trash-")
                else (self.builds / f".trash-{folder.name}")
            )
            with contextlib.suppress(OSError):
                if trash != folder:
                    os.replace(folder, trash)
                doomed.append(trash)
        if not doomed:
            return

        def remove() -> None:
            for folder in doomed:
                shutil.rmtree(folder, ignore_errors=True)

        thread = threading.Thread(target=remove, name="archive-cleanup", daemon=False)
        thread.start()
        self._cleanup_threads.append(thread)

    def wait_for_cleanup(self) -> None:
        """Wait until the old builds are removed."""
        for thread in self._cleanup_threads:
            thread.join()
        self._cleanup_threads.clear()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

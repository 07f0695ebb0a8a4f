"""How a batch replay writes into a state folder without losing what was there.

- ``back_up_checkpoints`` moves a folder's checkpoints into a timestamped
  backup folder beside them (``replay --fresh``, ``run --embedded --fresh``).
- ``StagedCheckpoints``: a replay saves its checkpoints into a hidden staging
  folder inside the state folder, and moves them into place only once its
  decisions are complete. A replay that is killed or interrupted before then
  leaves every checkpoint as it was; moving files within one folder is a
  rename, so the switch takes milliseconds even for thousands of streams.

The backup and staging folders hold a ``.`` in their names, which a
configuration name cannot (``checkpoints.CONFIG_NAME``), so neither is ever
mistaken for the folder of a named configuration.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from sequencer.adapters.files.checkpoints import CheckpointStore, _fsync_folder

logger = logging.getLogger(__name__)

_STAGING_PREFIX = ".replay-staging-"


def _utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def back_up_checkpoints(store: CheckpointStore,
                        stamp: Callable[[], str] = _utc_stamp) -> tuple[Path | None, list[Path]]:
    """Move every checkpoint file of ``store`` into ``FOLDER/backup.STAMP/``.

    Returns the backup folder (None when there was nothing to move) and the
    files as they are now named. Refused files move too: nothing is deleted.
    """
    files = store.files()
    if not files:
        return None, []
    base = store.folder / f"backup.{stamp()}"
    backup, n = base, 1
    while backup.exists():  # two --fresh runs within one second
        n += 1
        backup = base.with_name(f"{base.name}-{n}")
    backup.mkdir()
    moved = []
    for path in files:
        target = backup / path.name
        os.replace(path, target)
        moved.append(target)
    _fsync_folder(backup)
    _fsync_folder(store.folder)
    return backup, moved


class StagedCheckpoints:
    """Checkpoints saved aside by ``store`` (``.store``), then moved into ``target`` at once."""

    def __init__(self, target: CheckpointStore) -> None:
        self.target = target
        self._made_target = False
        self.store = target.beside(target.folder / f"{_STAGING_PREFIX}{os.getpid()}")

    def prepare(self) -> None:
        """Remove staging folders left by replays that died; the new one is made by the first save."""
        self.target.refuse_folders_in_the_way()
        self._made_target = not self.target.folder.exists()
        if self._made_target:
            return
        for old in self.target.folder.glob(f"{_STAGING_PREFIX}*"):
            if old == self.store.folder or not _pid_alive(old.name[len(_STAGING_PREFIX):]):
                logger.info("removing %s, left by a replay that did not finish", old)
                shutil.rmtree(old, ignore_errors=True)

    def commit(self) -> int:
        """Move every staged checkpoint into the target folder; returns how many."""
        staged = self.store.files()
        for path in staged:
            os.replace(path, self.target.folder / path.name)
        if staged:
            _fsync_folder(self.target.folder)
        self.discard()
        return len(staged)

    def discard(self) -> None:
        """Drop what is staged; a target folder this replay created and left empty goes too."""
        shutil.rmtree(self.store.folder, ignore_errors=True)
        if self._made_target:
            try:
                self.target.folder.rmdir()
            except OSError:  # not empty (committed), or already gone
                pass


def _pid_alive(text: str) -> bool:
    try:
        pid = int(text)
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True

"""Writing output files so that a failure names the file.

A failed ``write``, ``flush`` or ``fsync`` (a full disk: ENOSPC) raises an
``OSError`` without a file name; the CLI's one-line error needs one.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sequencer.domain import SequencerError


class NotAFolderError(SequencerError):
    """A path that must be a folder names a file."""


@contextmanager
def naming(path: Path | str) -> Iterator[None]:
    """Inside, an ``OSError`` without a file name is raised again naming ``path``."""
    try:
        yield
    except OSError as error:
        if error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def check_folder(folder: Path | str, what: str) -> None:
    """Refuse, before any work, a folder path that is (or lies under) a file.

    ``what`` names the folder in the message (``--out``, ``state folder``).
    """
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                where = "is" if candidate == folder else f"lies under {candidate}, which is"
                raise NotAFolderError(f"{what} {folder} {where} a file, not a folder")
            return

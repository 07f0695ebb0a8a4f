"""JSON checkpoint files (SPEC 7): one file per stream, one folder per configuration.

Writes are atomic (temporary file in the same folder, flush, fsync, rename),
so a crash leaves either the old file or the new one. Loading validates the
document and refuses a bad file with ``CheckpointError`` naming the file and
the problem; files in the seed's older layout are upgraded in memory.
"""

from __future__ import annotations

import codecs
import io
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import msgspec

from sequencer.domain import InvalidState, SequencerConfig, SequencerError, StreamState, state_to_dict
from sequencer.domain.events import STREAM_NAME
from sequencer.domain.state import home_partition, load_state_document, split_partition_key
from sequencer.adapters.files.file_writes import check_folder, naming
from sequencer.app.clock import utc_now_iso
from sequencer.app.codecs import NESTED_TOO_DEEP, state_fields, state_of_fields
from sequencer.app.distinct_keys import RepeatedKey, distinct_pairs
from sequencer.settings.location import CONFIG_NAME as CONFIG_NAME_SETTING, CONFIG_NAME_PATTERN

logger = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^state_([A-Za-z0-9]+)_([A-Za-z0-9_-]{1,32})\.json$")


def stream_of_file(path: Path | str) -> str | None:
    """The stream a checkpoint file's name says (``state_{instrument}_{stream}.json``), or None."""
    match = _FILE_NAME.fullmatch(Path(path).name)
    return match.group(2) if match else None
# The name rule and the default live with the setting that names them.
CONFIG_NAME = CONFIG_NAME_PATTERN
DEFAULT_CONFIG_NAME = CONFIG_NAME_SETTING.default


#: Why a folder named as a checkpoint file is refused (``refuse_folders_in_the_way``, ``state list``).
FOLDER_IN_THE_WAY = "is a folder where a checkpoint file should be; move it away and run again"


class CheckpointError(SequencerError):
    """A checkpoint file was refused; ``path`` names it, the message says why."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"checkpoint {path}: {problem}")
        self.path = path
        self.problem = problem


class OlderCheckpoint(SequencerError):
    """A save was refused: the file on disk holds a newer state of the stream."""

    def __init__(self, path: Path, kept: StreamState, refused: StreamState) -> None:
        super().__init__(
            f"checkpoint {path} not replaced: it holds {kept.stream} up to {kept.last_processed_date} "
            f"({kept.events_applied} events applied), the refused state only up to "
            f"{refused.last_processed_date} ({refused.events_applied} events)")
        self.path = path
        self.kept = kept
        self.refused = refused


class OtherPartitionCheckpoint(SequencerError):
    """A save was refused: the file holds the stream folded from another partition of its
    events topic. One stream's events belong in one partition (`domain.home_partition`);
    two homes mean a producer spread the stream from its first day and two workers each
    fold a part of it. Neither copy may replace the other without a word."""

    def __init__(self, path: Path, stream: str, topic: str, kept: int, refused: int) -> None:
        super().__init__(
            f"checkpoint {path} not replaced: it holds {stream} folded from partition {kept} of {topic}, "
            f"this state was folded from partition {refused}; the stream's events are in two partitions and "
            "two workers fold a part each: key every record by its stream name, then republish the stream "
            "and clear its state (sequencer state clear)")
        self.path = path


def other_home(state: StreamState, existing: StreamState) -> tuple[str, int, int] | None:
    """(topic, existing's home, state's home) for an events topic both fold from at different
    partitions, or None."""
    for key in existing.source_offsets:
        try:
            topic = split_partition_key(key)[0]
        except ValueError:
            continue
        kept, new = home_partition(existing.source_offsets, topic), home_partition(state.source_offsets, topic)
        if kept is not None and new is not None and kept != new:
            return topic, kept, new
    return None


def is_older(state: StreamState, than: StreamState) -> bool:
    """``state`` is behind ``than``: an earlier last processed date or fewer events applied."""
    if state.events_applied < than.events_applied:
        return True
    if than.last_processed_date is None:
        return False
    return state.last_processed_date is None or state.last_processed_date < than.last_processed_date


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A loaded checkpoint: the state, when it was saved, where it lives, upgrade notes."""

    state: StreamState
    path: Path
    saved_at: str | None
    upgraded_from_legacy: bool = False


def checkpoint_folder(state_dir: Path, config_name: str) -> Path:
    """The default configuration writes to ``state_dir``; a named one to a subfolder."""
    if not CONFIG_NAME.fullmatch(config_name):
        raise SequencerError(f"config name {config_name!r} must match {CONFIG_NAME.pattern}")
    return Path(state_dir) if config_name == DEFAULT_CONFIG_NAME else Path(state_dir) / config_name


class CheckpointStore:
    """Checkpoints of one configuration in one folder."""

    def __init__(self, folder: Path, config: SequencerConfig,
                 clock: Callable[[], str] = utc_now_iso) -> None:
        self.folder = Path(folder)
        check_folder(self.folder, "state folder")
        self.config = config
        self._clock = clock

    def beside(self, folder: Path) -> "CheckpointStore":
        """A store of the same configuration and clock in another folder (a staging area)."""
        return CheckpointStore(folder, self.config, self._clock)

    def path_for(self, stream: str, instrument: str) -> Path:
        if not STREAM_NAME.fullmatch(stream) or not instrument.isalnum():
            # Stream names become file names: never let one leave the folder.
            raise SequencerError(f"refusing a checkpoint path for stream {stream!r}")
        return self.folder / f"state_{instrument}_{stream}.json"

    def save(self, state: StreamState) -> Path:
        """Write atomically; returns the path.

        Raises `OlderCheckpoint` (and writes nothing) when the file already
        there holds a newer state: a checkpoint only moves forward;
        `OtherPartitionCheckpoint` when it holds the stream folded from another
        partition of its events topic. To start a
        stream over, remove its file first (`clear`, ``state reset``,
        ``replay --fresh``). A file that does not load is replaced."""
        path = self._writable_path(state)
        try:
            existing = self.load_file(path).state if path.is_file() else None
        except CheckpointError:
            existing = None
        split = None if existing is None else other_home(state, existing)
        if split is not None:
            raise OtherPartitionCheckpoint(path, state.stream, *split)
        if existing is not None and is_older(state, existing):
            logger.warning("refused: checkpoint %s holds %s up to %s (%d events); not replaced by "
                           "%s (%d events)", path, existing.stream, existing.last_processed_date,
                           existing.events_applied, state.last_processed_date, state.events_applied)
            raise OlderCheckpoint(path, existing, state)
        self.folder.mkdir(parents=True, exist_ok=True)
        data = json.dumps(state_to_dict(state, saved_at=self._clock()), indent=2, allow_nan=False)
        with naming(path):  # a full disk fails the write or fsync with no file name
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(data)
                    handle.write("\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        _fsync_folder(self.folder)
        return path

    def save_all(self, states: "Iterator[StreamState] | list[StreamState]") -> int:
        """Save every state; a folder where one file should be is refused before any is written."""
        states = list(states)
        for state in states:
            self._writable_path(state)
        for state in states:
            self.save(state)
        return len(states)

    def _writable_path(self, state: StreamState) -> Path:
        path = self.path_for(state.stream, state.instrument)
        if path.is_dir():
            raise CheckpointError(path, FOLDER_IN_THE_WAY)
        return path

    def check_writable(self) -> None:
        """Create the folder and a scratch file in it, or raise naming the folder and why.

        The worker calls it at start: a read-only folder is found before any
        event is folded, not at the first checkpoint.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(prefix=".write-check.", dir=self.folder):
                pass
        except OSError as error:
            raise SequencerError(f"state folder {self.folder} is not writable "
                                 f"({error.strerror or error}): checkpoints could not be saved") from error

    def load_file(self, path: Path) -> Checkpoint:
        """Load and validate one file; raises ``CheckpointError`` naming it.

        A current-layout file is typed by msgspec (``codecs.state_fields``) and
        checked by the domain's rules; any other (the older layout, a wrong type,
        broken JSON) is read by ``json.loads`` + ``load_state_document``, which
        upgrades it or says why it is refused."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if path.is_symlink():
                raise CheckpointError(path, f"is a symbolic link to {os.readlink(path)}, which does not "
                                            "exist (a volume not mounted?)") from None
            raise CheckpointError(path, "no such file") from None
        except OSError as error:
            raise CheckpointError(path, f"unreadable: {error}") from None
        try:
            # msgspec and json read a key given twice as its last value: a file
            # edited by hand with `current_target` twice would load one of them.
            json.loads(data, object_pairs_hook=distinct_pairs)
        except RepeatedKey as repeated:
            raise CheckpointError(path, f"{repeated} in one object (which one is meant?)") from None
        except (ValueError, RecursionError):
            pass  # the readers below say what is wrong with it
        # A file saved by a Windows editor or PowerShell starts with a BOM.
        fields = state_fields(data[3:] if data.startswith(codecs.BOM_UTF8) else data)
        if fields is not None:
            try:
                state = state_of_fields(fields, self.config)
            except InvalidState as error:
                raise CheckpointError(path, str(error)) from None
            saved_at = None if fields.saved_at is msgspec.UNSET else fields.saved_at
            return self._checked(path, state, [], saved_at, legacy=False)
        return self._load_generic(path, data)

    def _load_generic(self, path: Path, data: bytes) -> Checkpoint:
        try:
            # Decoded as ``read_text(encoding="utf-8-sig")`` would: a cut BOM, for one, reads as empty.
            text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig").read()
        except UnicodeDecodeError as error:
            raise CheckpointError(path, f"unreadable: {error}") from None
        if not text.strip():
            raise CheckpointError(path, "empty file (truncated?)")
        try:
            doc = json.loads(text)
        except RecursionError:
            raise CheckpointError(path, f"not valid JSON: {NESTED_TOO_DEEP}") from None
        except ValueError as error:  # also a plain ValueError: an int of more than 4,300 digits
            cut = isinstance(error, json.JSONDecodeError) and _looks_truncated(error, text)
            problem = "truncated JSON" if cut else "not valid JSON"
            raise CheckpointError(path, f"{problem}: {error}") from None
        try:
            state, warnings = load_state_document(doc, self.config)
        except InvalidState as error:
            raise CheckpointError(path, str(error)) from None
        except RecursionError:  # the repr of a deep value in the refusal
            raise CheckpointError(path, NESTED_TOO_DEEP) from None
        legacy = "schema_version" not in doc
        saved_at = doc.get("saved_at")
        return self._checked(path, state, warnings, saved_at if isinstance(saved_at, str) else None, legacy)

    def _checked(self, path: Path, state: StreamState, warnings: list[str], saved_at: str | None,
                 legacy: bool) -> Checkpoint:
        """The checkpoint, once its file name and its stream agree; the upgrade's notes logged."""
        match = _FILE_NAME.fullmatch(path.name)
        if match and (match.group(1), match.group(2)) != (state.instrument, state.stream):
            raise CheckpointError(
                path, f"holds stream {state.stream} ({state.instrument}), not the stream its name says"
            )
        for warning in warnings:
            logger.warning("checkpoint %s: %s", path, warning)
        if legacy:
            logger.info("checkpoint %s: upgraded from the older layout", path)
        return Checkpoint(state, path, saved_at, legacy)

    def load(self, stream: str, instrument: str) -> Checkpoint | None:
        path = self.path_for(stream, instrument)
        # A link whose target is gone is a checkpoint that cannot be read, not a
        # new stream: starting it over would fold its next days onto an empty state.
        return self.load_file(path) if path.exists() or path.is_symlink() else None

    def refuse_folders_in_the_way(self) -> None:
        """Raise naming a folder that sits where a checkpoint file would be written.

        Called before any work, so a replay does not fold everything and then
        fail half-way through writing its checkpoints.
        """
        for path in self.folders_in_the_way():
            raise CheckpointError(path, FOLDER_IN_THE_WAY)

    def folders_in_the_way(self) -> list[Path]:
        """The folders named as a checkpoint file would be (no checkpoint can be saved there)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir() and _FILE_NAME.fullmatch(p.name))

    def files(self) -> list[Path]:
        """The checkpoint files: regular files (or links to them) and links whose target
        is gone, which ``load_file`` refuses by name. (Not a FIFO or a device: reading
        one could wait for ever.)"""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _FILE_NAME.fullmatch(p.name)
                      and (p.is_file() or (p.is_symlink() and not p.exists())))

    def load_all(self) -> tuple[dict[str, Checkpoint], list[CheckpointError]]:
        """Every valid checkpoint by stream, and the refusals (the caller reports them)."""
        loaded: dict[str, Checkpoint] = {}
        refused: list[CheckpointError] = []
        for path in self.files():
            try:
                checkpoint = self.load_file(path)
            except CheckpointError as error:
                refused.append(error)
                continue
            loaded[checkpoint.state.stream] = checkpoint
        return loaded, refused

    def clear(self, stream: str) -> list[Path]:
        """Delete the stream's checkpoint(s); returns what was removed."""
        if not STREAM_NAME.fullmatch(stream):
            raise SequencerError(f"invalid stream name {stream!r}")
        removed = []
        for path in self.files():
            match = _FILE_NAME.fullmatch(path.name)
            if match and match.group(2) == stream:
                path.unlink()
                removed.append(path)
        return removed

    def clear_all(self) -> list[Path]:
        removed = self.files()
        for path in removed:
            path.unlink()
        return removed


_CUT_TOKEN = re.compile(r"^(?:[-+.eE0-9]*|t|tr|tru|f|fa|fal|fals|n|nu|nul)$")


def _looks_truncated(error: json.JSONDecodeError, text: str) -> bool:
    """The parser ran out of text: inside a string, or expecting more at the end.

    What follows the error position is then nothing, or the start of a cut
    token: a number such as ``10.`` or ``-``, or ``tru``, ``fa``, ``nu``.
    """
    if error.msg.startswith("Unterminated string"):
        return True
    return error.msg.startswith("Expecting") and bool(_CUT_TOKEN.match(text.rstrip()[error.pos:]))


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

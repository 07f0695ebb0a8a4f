"""`sequencer.adapters.files.file_writes` (errors that name the file) and `sequencer.app.clock`
(the one reader of the UTC clock) on their own."""

from __future__ import annotations

import datetime as dt
import errno

import pytest

from sequencer.app.clock import latest_event_date_now, utc_now_iso, utc_today
from sequencer.adapters.files.file_writes import NotAFolderError, check_folder, naming


def test_an_os_error_without_a_file_name_is_raised_again_naming_the_file(tmp_path):
    target = tmp_path / "decisions.csv"
    with pytest.raises(OSError) as raised:
        with naming(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert str(target) in str(raised.value)


def test_an_os_error_that_names_its_file_and_other_errors_pass_unchanged(tmp_path):
    original = FileNotFoundError(errno.ENOENT, "No such file", "/elsewhere/x")
    with pytest.raises(FileNotFoundError) as raised:
        with naming(tmp_path / "y"):
            raise original
    assert raised.value is original
    with pytest.raises(ValueError):
        with naming(tmp_path / "y"):
            raise ValueError("not an OS error")


def test_a_folder_path_that_is_or_lies_under_a_file_is_refused_by_name(tmp_path):
    check_folder(tmp_path, "--out")  # an existing folder
    check_folder(tmp_path / "new" / "deeper", "--out")  # not there yet: made later
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(NotAFolderError, match=f"--out {afile} is a file, not a folder"):
        check_folder(afile, "--out")
    with pytest.raises(NotAFolderError, match=f"state folder {afile / 'sub'} lies under {afile}, which is a file"):
        check_folder(afile / "sub", "state folder")


def test_the_clock_reads_utc_and_the_latest_event_date_is_one_day_ahead():
    before = dt.datetime.now(dt.timezone.utc)
    today, now, latest = utc_today(), dt.datetime.fromisoformat(utc_now_iso()), latest_event_date_now()
    after = dt.datetime.now(dt.timezone.utc)
    assert before.date() <= today <= after.date()
    assert now.utcoffset() == dt.timedelta(0) and now.microsecond == 0
    assert before.replace(microsecond=0) <= now <= after
    assert latest in {(d + dt.timedelta(days=1)).isoformat() for d in (before.date(), after.date())}

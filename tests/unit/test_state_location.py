"""`StateLocation`: the three location settings read without pydantic, by the same
rules as `Settings` (one set of rules, settings/location.py, used by both)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from sequencer.settings import Settings, SettingsError, StateLocation

VARIABLES = ("SEQUENCER_CONFIG_NAME", "SEQUENCER_CONFIG_FILE", "SEQUENCER_STATE_DIR")
ROOT = Path(__file__).resolve().parents[2]

# texts near the edges of the rules: blanks, spaces around, '~', bad names, the 64 limit
TEXTS = st.one_of(
    st.sampled_from(["", " ", "fast", " fast ", "../etc", "a b", "x" * 64, "x" * 65, "~/st", "st/a",
                     "ladder_v2", "-", "\t"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8),
)


def outcome(read):
    try:
        return read()
    except SettingsError as error:
        return ("refused", str(error), error.variable, error.field)


@settings(max_examples=300, deadline=None)
@given(environ=st.dictionaries(st.sampled_from(VARIABLES), TEXTS),
       name=st.none() | TEXTS, state_dir=st.none() | TEXTS.map(Path))
def test_reads_what_settings_reads(environ: dict[str, str], name: str | None, state_dir: Path | None) -> None:
    light = outcome(lambda: StateLocation.from_env(environ, config_name=name, state_dir=state_dir))
    full = outcome(lambda: Settings.from_env(environ, config_name=name, state_dir=state_dir))
    if isinstance(full, Settings):
        full = StateLocation(full.config_name, full.config_file, full.state_dir)
    assert light == full


def test_defaults_overrides_and_expansion() -> None:
    assert StateLocation.from_env({}) == StateLocation("default", None, Path("data/sequencer_runs/state"))
    env = {"SEQUENCER_CONFIG_NAME": "slow", "SEQUENCER_CONFIG_FILE": "~/c.toml", "SEQUENCER_STATE_DIR": " "}
    got = StateLocation.from_env(env, config_name="fast")
    assert got == StateLocation("fast", Path.home() / "c.toml", Path("data/sequencer_runs/state"))


def test_a_bad_name_is_refused_in_the_settings_words() -> None:
    with pytest.raises(SettingsError) as info:
        StateLocation.from_env({"SEQUENCER_CONFIG_NAME": "../etc"})
    assert str(info.value) == ("SEQUENCER_CONFIG_NAME: must be letters, digits, '_' or '-', at most 64 "
                               "(it becomes a folder and topic name), got '../etc'")


def test_an_unknown_override_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="partitions"):
        StateLocation.from_env({}, partitions=3)


def test_replay_does_not_import_pydantic(tmp_path: Path) -> None:
    # the point of StateLocation: a replay process skips pydantic-settings' import
    # (and the location variables still count: the state folder comes from one)
    code = ("import sys; from sequencer.cli.main import main; "
            f"rc = main(['replay', {str(ROOT / 'data' / 'sample')!r}, '--out', {str(tmp_path / 'out')!r}]); "
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_settings')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"SEQUENCER_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"
    assert list((tmp_path / "state").glob("state_*.json"))


def test_replay_refuses_a_bad_location_variable_in_one_line(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("sequencer")
    done = subprocess.run([str(script), "replay", str(ROOT / "data" / "sample"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"SEQUENCER_CONFIG_NAME": "a/b", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("sequencer: error: SEQUENCER_CONFIG_NAME: must be ")
    assert not (tmp_path / "out").exists()


def test_a_tilde_of_no_user_is_a_bad_value_not_a_traceback() -> None:
    for read in (StateLocation.from_env, Settings.from_env):
        with pytest.raises(SettingsError, match=r"^SEQUENCER_STATE_DIR: must be a path whose '~' names a known "
                                                r"user's home, got '~no-such-user-here/st'$"):
            read({"SEQUENCER_STATE_DIR": "~no-such-user-here/st"})

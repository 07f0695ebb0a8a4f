"""The CLI builds only the parser of the subcommand it is asked for (each replay saved the imports of the others)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sequencer.cli.main import SUBCOMMANDS, _command_of, build_parser


def test_a_replay_imports_no_other_subcommand():
    code = ("import sys; from sequencer.cli.main import build_parser, _command_of; "
            "build_parser(_command_of(['-v', 'replay', 'in.csv', '--out', 'o'])); "
            "print(sorted(m for m in sys.modules if m.startswith('sequencer.cli.') and m.endswith('_cmd')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['sequencer.cli.replay_cmd']"


@pytest.mark.parametrize("argv, command", [(["replay", "x"], "replay"), (["-v", "-v", "state", "list"], "state"),
                                           (["-vv", "report", "d.csv"], "report"), (["--help"], None), ([], None)])
def test_the_command_is_the_first_word_that_is_no_option(argv, command):
    assert _command_of(argv) == command


def test_without_a_known_command_every_subcommand_is_there(capsys):
    for command in (None, "nope"):
        with pytest.raises(SystemExit):
            build_parser(command).parse_args(["--help"])
        listed = capsys.readouterr().out
        assert all(name.removesuffix("_cmd") in listed for name in SUBCOMMANDS)
    args = build_parser("state").parse_args(["-v", "state", "list"])
    assert (args.command, args.verbose) == ("state", 1)

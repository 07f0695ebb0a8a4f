"""The import graph: the domain is standard library only, the batch path never loads Kafka."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sequencer"
KAFKA = ("faust", "aiokafka", "mode", "confluent_kafka")
#: Modules with no Kafka client at import time: files, checkpoints, the fold's callers.
KAFKA_FREE = ("processor", "sources", "checkpoints", "codecs", "replay", "file_replay", "record_files",
              "gap_repair", "live_state", "config_file", "state_folder")


def imported_modules(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "domain").glob("*.py")), ids=lambda p: p.name)
def test_the_domain_imports_only_the_standard_library(path: Path):
    # Relative imports (within the domain) have level > 0 and are not listed.
    outside = {name for name in imported_modules(path, top_level_only=False)
               if name not in sys.stdlib_module_names and name != "__future__"}
    assert outside == set(), f"{path.name} imports {sorted(outside)}"


@pytest.mark.parametrize("name", KAFKA_FREE)
def test_file_and_state_modules_load_no_kafka_client(name: str):
    kafka = imported_modules(PACKAGE / f"{name}.py", top_level_only=True) & set(KAFKA)
    assert kafka == set(), f"sequencer/{name}.py imports {sorted(kafka)} at import time"


def test_the_replay_command_never_loads_faust_or_aiokafka():
    code = ("import sys; from sequencer.cli.main import build_parser; build_parser(); "
            "import sequencer.file_replay, sequencer.sources, sequencer.checkpoints; "
            f"print(sorted(m for m in {KAFKA!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

"""The package's layers, checked on every import statement of `sequencer/` and `streamer/`.

- the domain imports only the standard library (and itself);
- Kafka and Faust clients (``faust``, ``aiokafka``, ``confluent_kafka``, ``mode``) are
  imported only under ``sequencer/adapters/``, ``sequencer/cli/`` and ``sequencer/ui/``;
- imports between layers go one way: domain <- app <- adapters <- cli, ui (settings is
  read by app and adapters, and reads only the domain);
- ``streamer/`` (the publisher program) may import sequencer's domain, app, adapters and
  settings, not its cli or ui (``sequencer run`` may import the streamer's publisher);
- no import cycle between modules;
- at most 8 modules directly in ``sequencer/``;
- ``sequencer replay`` never loads Faust or aiokafka.

"Every import statement" means: at module level, inside functions and classes, under
``if TYPE_CHECKING:``, and ``importlib.import_module("...")`` / ``__import__("...")`` with
a literal name. Each check is a function over ``{path: source}``, run here on the package
and, below, on a synthetic source that breaks it (so each check can fail).
"""

from __future__ import annotations

import ast
import dataclasses
import graphlib
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Mapping

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sequencer"
STREAMER = ROOT / "streamer"
KAFKA = ("faust", "aiokafka", "mode", "confluent_kafka")
#: Layers that may import a Kafka or Faust client (the streamer is a Kafka producer).
KAFKA_LAYERS = {"adapters", "cli", "ui", "streamer"}
#: Which layers a layer may import (its own included). ``root`` is ``sequencer/__init__.py``.
ALLOWED = {
    "root": set(),
    "domain": {"domain"},
    "settings": {"domain", "settings"},
    "app": {"domain", "app", "settings"},
    "adapters": {"domain", "app", "adapters", "settings"},
    "cli": {"domain", "app", "adapters", "settings", "cli", "streamer"},
    "ui": {"domain", "app", "adapters", "settings", "ui"},
    "streamer": {"domain", "app", "adapters", "settings", "streamer"},
}
MAX_TOP_LEVEL_MODULES = 8

#: Imports that break a rule today, each with why and what removes it. A test fails when
#: one of them is gone, so the list only shrinks.
KNOWN_KAFKA_OUTSIDE_ADAPTERS: dict[tuple[str, str], str] = {}
KNOWN_WRONG_WAY: dict[tuple[str, str], str] = {}


@dataclasses.dataclass(frozen=True)
class ImportLine:
    importer: str  # dotted module name
    imported: str  # dotted, absolute
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def module_name(path: str) -> tuple[str, bool]:
    """``sequencer/app/x.py`` -> (``sequencer.app.x``, False); an ``__init__.py`` names its package."""
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def package_sources(root: Path = PACKAGE) -> dict[str, str]:
    return {str(p.relative_to(root.parent)): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.py"))}


def import_lines(sources: Mapping[str, str]) -> list[ImportLine]:
    """Every import of every source, names resolved to absolute module paths.

    ``from P import x`` names the module ``P.x`` when that is a module of ``sources``.
    """
    names = {module_name(path) for path in sources}
    modules = {name for name, _ in names}
    found: list[ImportLine] = []
    for path, source in sources.items():
        module, is_package = module_name(path)
        package = module if is_package else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(source, filename=path)):
            if isinstance(node, ast.Import):
                found += [ImportLine(module, alias.name, node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.append(ImportLine(module, sub if sub in modules else base, node.lineno))
            elif isinstance(node, ast.Call) and _is_import_call(node.func) and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.append(ImportLine(module, first.value, node.lineno))
    return found


def _is_import_call(func: ast.expr) -> bool:
    return ((isinstance(func, ast.Attribute) and func.attr == "import_module")
            or (isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}))


def layer_of(module: str) -> str | None:
    """The layer of a ``sequencer`` module (``streamer`` for the publisher program's);
    None outside both packages."""
    parts = module.split(".")
    if parts[0] == "streamer":
        return "streamer"
    if parts[0] != "sequencer":
        return None
    if len(parts) == 1:
        return "root"
    return parts[1] if parts[1] in ALLOWED else f"top-level module {parts[1]}"


def domain_violations(lines: Iterable[ImportLine]) -> list[str]:
    """Domain imports of anything but the standard library and the domain."""
    return [str(line) for line in lines
            if layer_of(line.importer) == "domain"
            and line.imported.split(".")[0] not in sys.stdlib_module_names
            and layer_of(line.imported) != "domain"]


def kafka_violations(lines: Iterable[ImportLine]) -> list[str]:
    """Imports of a Kafka or Faust client outside adapters, cli and ui."""
    return [str(line) for line in lines
            if line.imported.split(".")[0] in KAFKA and layer_of(line.importer) not in KAFKA_LAYERS
            and (line.importer, line.imported.split(".")[0]) not in KNOWN_KAFKA_OUTSIDE_ADAPTERS]


def wrong_way_imports(lines: Iterable[ImportLine]) -> list[str]:
    """Imports between layers against the arrows of ``ALLOWED``."""
    bad = []
    for line in lines:
        target = layer_of(line.imported)
        if target is None or (line.importer, line.imported) in KNOWN_WRONG_WAY:
            continue
        source = layer_of(line.importer)
        if target not in ALLOWED.get(source, set()):
            bad.append(f"{line} ({source} -> {target})")
    return bad


def import_cycle(lines: Iterable[ImportLine]) -> list[str] | None:
    """One cycle of the import graph between ``sequencer`` modules, or None."""
    graph: dict[str, set[str]] = {}
    for line in lines:
        if layer_of(line.imported) is not None and line.imported != line.importer:
            graph.setdefault(line.importer, set()).add(line.imported)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


def top_level_modules(paths: Iterable[str]) -> list[str]:
    return sorted(p for p in paths if len(Path(p).parts) == 2 and p.endswith(".py"))


@pytest.fixture(scope="module")
def lines() -> list[ImportLine]:
    return import_lines({**package_sources(), **package_sources(STREAMER)})


def test_the_streamer_is_checked(lines):
    assert {"streamer.cli", "streamer.publisher"} <= {line.importer for line in lines}


# -- the package --------------------------------------------------------------------------

def test_the_domain_imports_only_the_standard_library(lines):
    assert domain_violations(lines) == []


def test_kafka_and_faust_clients_are_imported_only_by_adapters_cli_and_ui(lines):
    assert kafka_violations(lines) == []


def test_layers_import_one_way(lines):
    assert wrong_way_imports(lines) == []


def test_no_import_cycle_between_modules(lines):
    assert import_cycle(lines) is None


def test_at_most_eight_modules_directly_in_the_package():
    found = top_level_modules(package_sources())
    assert len(found) <= MAX_TOP_LEVEL_MODULES, found


def test_every_known_exception_still_exists(lines):
    # When one is fixed, remove it from the list: the list only shrinks.
    kafka = {(line.importer, line.imported.split(".")[0]) for line in lines}
    internal = {(line.importer, line.imported) for line in lines}
    assert set(KNOWN_KAFKA_OUTSIDE_ADAPTERS) <= kafka, set(KNOWN_KAFKA_OUTSIDE_ADAPTERS) - kafka
    assert set(KNOWN_WRONG_WAY) <= internal, set(KNOWN_WRONG_WAY) - internal


def test_the_worker_offers_everything_its_views_read():
    # The views are typed against app.worker_view.WorkerView, which the Faust worker's
    # runtime satisfies structurally; a member renamed on one side only fails here.
    from sequencer.adapters.faust.worker import WorkerRuntime
    from sequencer.app.worker_view import WorkerView

    fields = {f.name for f in dataclasses.fields(WorkerRuntime)}
    wanted = set(WorkerView.__annotations__) | {
        name for name, value in vars(WorkerView).items() if callable(value) and not name.startswith("_")}
    missing = {name for name in wanted if name not in fields and not hasattr(WorkerRuntime, name)}
    assert missing == set()


def test_the_replay_command_never_loads_faust_or_aiokafka():
    code = ("import sys; from sequencer.cli.main import build_parser; build_parser(); "
            "import sequencer.adapters.files.file_replay, sequencer.adapters.files.sources, "
            "sequencer.adapters.files.checkpoints; "
            f"print(sorted(m for m in {KAFKA!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- each check fails on a planted violation ------------------------------------------------

def planted(**modules: str) -> list[ImportLine]:
    """Import lines of synthetic modules given as ``sequencer__app__x="source"``."""
    return import_lines({name.replace("__", "/") + ".py": source for name, source in modules.items()})


def test_imports_are_found_at_every_level_and_resolved():
    found = {(line.importer, line.imported) for line in planted(
        sequencer__app__a=("from typing import TYPE_CHECKING\n"
                           "if TYPE_CHECKING:\n    from ..adapters.kafka import lag\n"
                           "class C:\n    def m(self):\n        import faust.web\n"
                           "def f():\n    import importlib\n    return importlib.import_module('aiokafka.admin')\n"
                           "from . import b\n"),
        sequencer__app__b="",
        sequencer__adapters__kafka__lag="",
    )}
    assert {("sequencer.app.a", "sequencer.adapters.kafka.lag"), ("sequencer.app.a", "faust.web"),
            ("sequencer.app.a", "aiokafka.admin"), ("sequencer.app.a", "sequencer.app.b")} <= found


def test_a_domain_module_importing_pandas_is_caught():
    assert domain_violations(planted(sequencer__domain__x="def f():\n    import pandas\n"))
    assert domain_violations(planted(sequencer__domain__x="from ..app import replay\n"))
    assert not domain_violations(planted(sequencer__domain__x="import json\nfrom .errors import E\n"))


def test_a_kafka_client_imported_inside_a_function_of_app_is_caught():
    assert kafka_violations(planted(sequencer__app__x="def f():\n    from aiokafka import AIOKafkaConsumer\n"))
    assert kafka_violations(planted(sequencer__app__x="import importlib\nimportlib.import_module('faust')\n"))
    assert kafka_violations(planted(sequencer__domain__x="import mode\n"))
    assert not kafka_violations(planted(sequencer__adapters__kafka__x="import aiokafka\n"))
    assert not kafka_violations(planted(sequencer__cli__x="def f():\n    import faust\n"))


def test_an_import_against_the_arrows_is_caught():
    assert wrong_way_imports(planted(sequencer__app__x="from sequencer.adapters.files import sources\n"))
    assert wrong_way_imports(planted(sequencer__adapters__x="from ..cli import common\n"))
    assert wrong_way_imports(planted(sequencer__ui__x="from sequencer.cli.progress import bar\n"))
    assert wrong_way_imports(planted(sequencer__extra="import sequencer.app.replay\n"))  # no layer
    assert not wrong_way_imports(planted(sequencer__cli__x="from ..adapters.kafka import lag\n"))


def test_the_streamer_importing_sequencers_cli_is_caught():
    assert wrong_way_imports(planted(streamer__cli="def f():\n    from sequencer.cli.progress import bar\n"))
    assert wrong_way_imports(planted(streamer__cli="from sequencer.ui import data\n"))
    assert wrong_way_imports(planted(sequencer__app__x="from streamer.publisher import EventPublisher\n"))
    assert not wrong_way_imports(planted(
        streamer__cli="from sequencer.adapters.progress import progress_bar\nfrom .publisher import P\n",
        streamer__publisher="from sequencer.app.codecs import encode_event\nimport aiokafka\n"))
    assert not kafka_violations(planted(streamer__publisher="from aiokafka import AIOKafkaProducer\n"))
    assert not wrong_way_imports(planted(sequencer__cli__run_cmd="from streamer.publisher import P\n"))


def test_an_import_cycle_is_caught_even_through_type_checking_or_a_function():
    cycle = import_cycle(planted(
        sequencer__app__a="from .b import x\n",
        sequencer__app__b="def f():\n    from .c import y\n",
        sequencer__app__c="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import z\n",
    ))
    assert cycle is not None and set(cycle) == {"sequencer.app.a", "sequencer.app.b", "sequencer.app.c"}
    assert import_cycle(planted(sequencer__app__a="from .b import x\n", sequencer__app__b="")) is None


def test_a_ninth_top_level_module_is_caught():
    paths = [f"sequencer/m{i}.py" for i in range(9)] + ["sequencer/app/x.py"]
    assert len(top_level_modules(paths)) == 9 > MAX_TOP_LEVEL_MODULES

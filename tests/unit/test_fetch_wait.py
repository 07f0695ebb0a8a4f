"""The worker's consumer waits briefly for records: Faust's fixed 1,500 ms fetch wait
is what a day event sat behind on a quiet topic of the embedded broker."""

from __future__ import annotations

import faust
import pytest

from sequencer.adapters.faust.private_api import install_fast_drain
from sequencer.adapters.faust.fetch_wait import FETCH_MAX_WAIT_MS, install


@pytest.mark.parametrize("fast_drain", [True, False])
async def test_the_worker_consumer_is_built_with_the_short_fetch_wait(fast_drain: bool) -> None:
    app = faust.App(f"fetch-wait-{fast_drain}", broker="kafka://127.0.0.1:9", store="memory://",
                    web_enabled=False)
    if fast_drain:
        install_fast_drain(app)
    fast_class = app.transport.Consumer
    install(app)
    consumer = app.consumer
    assert isinstance(consumer, fast_class)  # the fast drain (or Faust's own) stays underneath
    built = consumer._thread._create_worker_consumer(app.transport)  # built, not started: no broker needed
    assert built._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500
    # Faust reads uncommitted records unless it runs its own exactly-once; the
    # worker never folds records of a transaction its producer aborted.
    assert built._isolation_level == "read_committed"

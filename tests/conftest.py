"""Shared fixtures: the session's embedded broker (tests/support/broker_fixture.py),
and hypothesis without its per-example deadline.

The deadline (200 ms by default) is a timing assertion: on the shared 2-core CI
machine an example that runs a fold or a codec over a few hundred events took
longer under load and failed a test whose subject is correctness. Speed is
measured in bench/, not here; a test that wants a deadline sets its own."""

from hypothesis import settings

settings.register_profile("sequencer", deadline=None)
settings.load_profile("sequencer")

pytest_plugins = ["tests.support.broker_fixture"]

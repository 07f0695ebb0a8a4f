"""Shared fixtures: the session's embedded broker (tests/support/broker_fixture.py)."""

pytest_plugins = ["tests.support.broker_fixture"]

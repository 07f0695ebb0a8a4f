"""Shared fixtures: the session's embedded broker (tests/broker_fixture.py)."""

pytest_plugins = ["tests.broker_fixture"]

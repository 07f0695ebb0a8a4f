"""A small client of the worker's HTTP API (`sequencer.adapters.http.views`), standard library only.

Used by ``sequencer lag`` and the UI. Every call has a short timeout: a worker
that is not running must cost a dashboard refresh a fraction of a second::

    api = WorkerApi("http://127.0.0.1:6066", token=None)
    if api.reachable():
        rows = api.streams()
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from sequencer.domain import SequencerError


class ApiUnavailable(SequencerError):
    """Nothing answers at the API address (no worker running there)."""


class ApiError(SequencerError):
    """The worker answered with an error status; ``status`` and the JSON ``error`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class WorkerApi:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.base_url + path, method=method,
                                         data=b"" if method == "POST" else None)
        if method == "POST" and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                message = json.loads(text).get("error", text)
            except (ValueError, AttributeError):
                message = text
            raise ApiError(error.code, message) from None
        except (urllib.error.URLError, OSError) as error:
            raise ApiUnavailable(f"no worker API at {self.base_url}: {error}") from None
        if kind.startswith("application/json"):
            return json.loads(body)
        return body.decode()

    def reachable(self) -> bool:
        try:
            self._request("GET", "/streams")
        except (ApiUnavailable, ApiError):
            return False
        return True

    def lag(self) -> dict[str, Any]:
        return self._request("GET", "/lag")

    def streams(self) -> list[dict[str, Any]]:
        return self._request("GET", "/streams")

    def stream(self, stream: str) -> dict[str, Any]:
        return self._request("GET", f"/streams/{stream}")

    def metrics(self) -> str:
        return self._request("GET", "/metrics")

    def checkpoint(self, stream: str) -> dict[str, Any]:
        return self._request("POST", f"/streams/{stream}/checkpoint")

    def reset(self, stream: str) -> dict[str, Any]:
        return self._request("POST", f"/streams/{stream}/reset")

"""The worker's web server: lag endpoint, HTTP API and its token."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import Expected, SettingsSection, refuse_bool

__all__ = ["WebSettings"]


class WebSettings(SettingsSection):
    web_host: Annotated[str, Field(min_length=1), Expected("a host name or address")] = Field(
        "127.0.0.1", validation_alias="SEQUENCER_WEB_HOST")
    web_port: Annotated[int, refuse_bool, Field(ge=1, le=65535), Expected("a TCP port (1-65535)")] = Field(
        6066, validation_alias="SEQUENCER_WEB_PORT")
    api_token: Annotated[str | None, Expected("a string")] = Field(
        None, repr=False, validation_alias="SEQUENCER_API_TOKEN")

"""`RelayClient`: the one object the job engine and the CLI use to talk to a relay."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import httpx
from pydantic import SecretStr

from bot.catalogue import Catalogue, shipped_catalogue
from bot.clock import Clock
from bot.relay import official, task
from bot.relay.budget import RequestBudget
from bot.relay.callbacks import Hook
from bot.relay.errors import InvalidResponseError
from bot.relay.estimate import prior_seconds
from bot.relay.http import RelayHTTP, RetryPolicy
from bot.relay.models import (
    Character,
    Event,
    RelayFormat,
    VideoRequest,
    check_timestamps,
    format_timestamps,
)
from bot.relay.polling import expected_seconds

if TYPE_CHECKING:
    from bot.settings import RelayConfig, Settings

CHARACTERS_PATH = "/sora/v1/characters"
MODELS_PATH = "/v1/models"


class RelayClient:
    """Renders videos through one relay in one of its three formats.

    `generate()` yields `Submitted` once the relay accepted the job, then `Progress`, then
    one `Finished`; it raises only `RelayError` subclasses.
    """

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        format: RelayFormat = "task",
        chat_style: Literal["suffix", "prefix"] = "suffix",
        chat_model: str = "sora_video2",
        timeout: float = 30.0,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        polls_per_second: float = 5.0,
        stream_idle: float = 600.0,
        hook: Hook | None = None,
        requests_per_minute: int | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.format: RelayFormat = format
        #: The models' wire details (aspect ratios, sizes, chat rules, typical times).
        self.catalogue = catalogue or shipped_catalogue()
        #: Task-format submits ask the relay to call `hook.url` when they end.
        self.hook = hook
        self.chat_style: Literal["suffix", "prefix"] = chat_style
        self.chat_model = chat_model
        self._http = RelayHTTP(
            base_url,
            api_key,
            timeout=timeout,
            clock=clock,
            transport=transport,
            retry=retry,
            polls_per_second=polls_per_second,
            stream_idle=stream_idle,
            requests_per_minute=requests_per_minute,
        )

    @classmethod
    def from_config(
        cls,
        config: RelayConfig,
        *,
        timeout: float = 30.0,
        polls_per_second: float = 5.0,
        clock: Clock | None = None,
        stream_idle: float = 600.0,
        requests_per_minute: int | None = None,
        catalogue: Catalogue | None = None,
    ) -> RelayClient:
        """`stream_idle` and `requests_per_minute`: the defaults, unless the relay's config
        sets its own."""
        return cls(
            config.base_url,
            config.api_key,
            format=config.format,
            chat_style=config.chat_style,
            chat_model=config.chat_model,
            timeout=timeout,
            polls_per_second=polls_per_second,
            clock=clock,
            stream_idle=config.stream_idle_seconds or stream_idle,
            requests_per_minute=config.requests_per_minute or requests_per_minute,
            catalogue=catalogue,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> RelayClient:
        settings.require("relay_base_url", "relay_api_key")
        assert settings.relay_api_key is not None
        return cls(
            settings.relay_base_url,
            settings.relay_api_key,
            format=settings.relay_format,
            chat_style=settings.relay_chat_style,
            chat_model=settings.relay_chat_model,
            timeout=settings.relay_timeout,
            clock=clock,
            stream_idle=settings.relay_stream_idle_seconds,
            requests_per_minute=settings.relay_requests_per_minute,
            catalogue=settings.catalogue(),
        )

    @property
    def base_url(self) -> str:
        return self._http.base_url

    @property
    def clock(self) -> Clock:
        return self._http.clock

    @property
    def budget(self) -> RequestBudget:
        """This relay's request budget (every request takes a slot of it)."""
        return self._http.budget

    def __repr__(self) -> str:
        return f"RelayClient(base_url={self.base_url!r}, format={self.format!r})"

    async def __aenter__(self) -> RelayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def format_for(self, request: VideoRequest) -> RelayFormat:
        """The format a job for `request` really uses (a remix is always official);
        store it with the relay id to `resume()` after a restart."""
        return "official" if request.remix_of is not None else self.format

    def carries(self, request: VideoRequest) -> bool:
        """Whether this relay's format can carry the request's model (its catalogue entry
        names the format); a model the catalogue doesn't know is left to the relay."""
        entry = self.catalogue.get(request.model)
        return entry is None or self.format_for(request) in entry.formats

    async def generate(
        self,
        request: VideoRequest,
        *,
        deadline: float | None = None,
        expected: float | None = None,
    ) -> AsyncGenerator[Event, None]:
        """`expected`: seconds such renders took here lately (the history), if known; it
        seeds when the status is read (`bot.relay.estimate`)."""
        fmt = self.format_for(request)
        entry = self.catalogue.get(request.model)
        if expected is None and entry is not None:
            expected = prior_seconds(entry.typical_seconds(request), images=bool(request.images))
        events: AsyncGenerator[Event, None]
        if fmt == "task":
            events = task.generate(
                self._http,
                request,
                deadline=deadline,
                expected=expected,
                hook=self.hook,
                entry=entry,
            )
        elif fmt == "official":
            events = official.generate(
                self._http, request, deadline=deadline, expected=expected, entry=entry
            )
        elif fmt == "chat":
            from bot.relay import chat  # needs the chat text parser; only the chat format does

            events = chat.generate(
                self._http,
                request,
                style=self.chat_style,
                chat_model=self.chat_model,
                deadline=deadline,
                entry=entry,
            )
        else:  # pragma: no cover - RelayFormat is closed
            raise ValueError(f"unknown relay format {fmt!r}")
        async with aclosing(events):
            async for event in events:
                yield event

    async def resume(
        self,
        relay_id: str,
        format: RelayFormat,
        *,
        deadline: float | None = None,
        expected: float | None = None,
        elapsed: float = 0.0,
    ) -> AsyncGenerator[Event, None]:
        """Poll a job submitted earlier (maybe by another process); no `Submitted` event.

        `deadline` counts from now; `elapsed`: seconds since the relay accepted it, and
        `expected` its estimated render time, so reads keep to the same estimate. A chat
        stream cannot be resumed (`ValueError`).
        """
        if format == "chat":
            raise ValueError("a chat-format job cannot be resumed; its stream is gone")
        expected = expected_seconds(None) if expected is None else expected
        elapsed = max(elapsed, 0.0)
        started = self.clock.monotonic() - elapsed
        total = None if deadline is None else deadline + elapsed
        events: AsyncGenerator[Event, None]
        if format == "task":
            events = task.resume(
                self._http,
                relay_id,
                deadline=total,
                expected=expected,
                started=started,
                hook=self.hook,
            )
        elif format == "official":
            events = official.poll(
                self._http,
                relay_id,
                deadline=total,
                expected=expected,
                started=started,
                immediate=True,
            )
        else:  # pragma: no cover
            raise ValueError(f"unknown relay format {format!r}")
        async with aclosing(events):
            async for event in events:
                yield event

    async def create_character(
        self,
        *,
        url: str | None = None,
        from_task: str | None = None,
        start: float,
        end: float,
    ) -> Character:
        if (url is None) == (from_task is None):
            raise ValueError("give exactly one of url or from_task")
        check_timestamps(start, end)
        body: dict[str, Any] = {"timestamps": format_timestamps(start, end)}
        if url is not None:
            body["url"] = url
        else:
            body["from_task"] = from_task
        reply = await self._http.post_json(CHARACTERS_PATH, body)
        data = task.unwrap(reply.data)
        char_id, username = data.get("id"), data.get("username")
        if not isinstance(char_id, str) or not isinstance(username, str) or not username:
            raise InvalidResponseError("the relay's character answer has no id or username")
        return Character(
            id=char_id,
            username=username.lstrip("@"),
            permalink=_opt_str(data.get("permalink")),
            profile_picture_url=_opt_str(data.get("profile_picture_url")),
        )

    async def list_models(self) -> list[str]:
        reply = await self._http.get_json(MODELS_PATH)
        data = reply.data
        items = data.get("data") if isinstance(data, Mapping) else data
        if not isinstance(items, list):
            raise InvalidResponseError("the relay's model list is not a list")
        names = []
        for item in items:
            name = item.get("id") if isinstance(item, Mapping) else item
            if isinstance(name, str) and name:
                names.append(name)
        return names

    async def download(self, location: str, *, max_bytes: int) -> bytes | None:
        """A finished video in memory (None if larger than `max_bytes`); `location` is a
        public link or a relay path such as `VideoResult.content_path`."""
        return await self._http.download(location, max_bytes=max_bytes)

    async def fetch_into(self, location: str, sink: BinaryIO, *, max_bytes: int | None) -> bool:
        """Stream a finished video into `sink`; False if larger than `max_bytes`."""
        return await self._http.fetch_into(location, sink, max_bytes=max_bytes)


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None

"""Several relays in order of preference, with failover and a circuit breaker each.

Relays go down and run out of credit; a server owner who pays for two wants the second
to take over. A job moves on to the next relay only when the previous one certainly did
not take it (refused outright, or never reached): once a relay may have accepted a job,
the job stays with it, because submitting it elsewhere could bill the operator twice.
A relay that keeps failing is skipped for a cool-down instead of being hammered.

Each relay's `GET /v1/models` says which models it really sells ("offers"): read at
start-up, again when a list is older than `offers_ttl` and someone asks (never waited
for: the last answer serves meanwhile), and at once after a `model_not_found`. A job is
only offered to relays that list its model. A relay that never answered with a list
(many 404 that path) is unknown, and may carry every catalogue model its format carries:
never "offers nothing", or a relay without the endpoint would refuse every job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Literal

from bot.clock import Clock, SystemClock
from bot.relay.callbacks import Callbacks, Hook
from bot.relay.client import RelayClient
from bot.relay.errors import (
    ModelNotOfferedError,
    ModelUnavailableError,
    RateLimitedError,
    RelayError,
    TaskNotFoundError,
    UnavailableError,
)
from bot.relay.models import (
    Character,
    Event,
    RelayFormat,
    Submitted,
    VideoRequest,
)
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.catalogue import Catalogue

log = logging.getLogger(__name__)

BreakerState = Literal["closed", "open", "half-open"]
Permit = Literal["normal", "trial"] | None

RATE_LIMIT_WAIT = 15.0  # when a 429 names no Retry-After
MAX_RATE_LIMIT_WAIT = 60.0
CALLBACK_PATH = "/relay-callback"
OFFERS_TTL = 600.0  # a relay's model list is read again when older than this

#: Seconds renders like this one took lately on the named relay (None: no history).
History = Callable[[str], Awaitable[float | None]]


def _lists_family(listed: Collection[str], family: str) -> bool:
    """A chat relay lists its family as is, or with suffixes (`sora_video2-portrait`)."""
    family = family.lower()
    return family in listed or any(name.startswith(family + "-") for name in listed)


def callback_url(base_url: str, secret: str, relay: str) -> str:
    """The `notify_hook` a relay is given: the notice listener's callback route, with
    the secret path segment (relays sign nothing) and the relay's name."""
    return f"{base_url.rstrip('/')}{CALLBACK_PATH}/{secret}/{relay}"


class CircuitBreaker:
    """Closed → open after `threshold` failures in a row → half-open after `cooldown`
    seconds, when exactly one trial request decides whether it closes again or reopens.

    While that trial is in flight every other request is refused as if the breaker were
    still open: a relay that just came back must not take a whole backlog at once, and a
    still-broken one must not fail a dozen jobs in parallel.
    """

    def __init__(self, clock: Clock, *, threshold: int = 3, cooldown: float = 60.0) -> None:
        self.clock = clock
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self.last_error: str | None = None
        self._trial = False  # a half-open trial request is in flight

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        if self.clock.monotonic() - self.opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def allows(self) -> bool:
        """Whether a request may go now (without taking the trial; see `acquire`)."""
        state = self.state
        return state == "closed" or (state == "half-open" and not self._trial)

    def acquire(self) -> Permit:
        """Permission to send one request: always when closed; when half-open, only the
        first caller gets it (the trial) until `succeeded`, `failed` or `release`."""
        state = self.state
        if state == "closed":
            return "normal"
        if state == "open" or self._trial:
            return None
        self._trial = True
        return "trial"

    def release(self, permit: Permit) -> None:
        """The request ended without a verdict on the relay (cancelled, refused for the
        member's own reasons): if it was the trial, the next request may be one."""
        if permit == "trial":
            self._trial = False

    def succeeded(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.last_error = None
        self._trial = False

    def failed(self, error: RelayError) -> None:
        self.failures += 1
        self.last_error = error.code
        if self.state == "half-open" or self.failures >= self.threshold:
            self.opened_at = self.clock.monotonic()
        self._trial = False


@dataclass
class PoolMember:
    name: str
    client: RelayClient
    breaker: CircuitBreaker
    low_credit: float | None = None  # the quota a relay's `user_quota_too_low` notice gave
    low_credit_noticed: bool = False
    #: The names its `/v1/models` gave the last time it answered with a list; None while
    #: it never has (unknown: it may offer any model its format carries).
    listed: frozenset[str] | None = None
    listed_at: float | None = None  # clock.monotonic() of that answer
    listing_tried: float | None = None  # of the last attempt, answered or not
    listing_error: str | None = None  # why the last attempt gave no list, if it didn't
    _keys: tuple[frozenset[str], frozenset[str]] | None = field(default=None, repr=False)

    @property
    def format(self) -> RelayFormat:
        return self.client.format

    @property
    def listed_keys(self) -> frozenset[str] | None:
        """`listed` in lower case, for matching (None: no list)."""
        if self.listed is None:
            return None
        if self._keys is None or self._keys[0] is not self.listed:
            self._keys = (self.listed, frozenset(name.lower() for name in self.listed))
        return self._keys[1]


@dataclass(frozen=True)
class RelayHealth:
    """What `/relay status` and `python -m bot check` show for one relay."""

    name: str
    ok: bool
    latency: float | None
    models: Sequence[str]
    error: str | None
    format: RelayFormat = "task"
    breaker: BreakerState = "closed"
    low_credit: float | None = None
    low_credit_noticed: bool = False
    error_code: str | None = None  # the failure's code, and the relay's own words for it
    detail: str | None = None  # (for operators only: `check --verbose` and the log)
    #: Catalogue models it offers (with `listed` False: may offer, its list unknown).
    offers: Sequence[str] = ()
    listed: bool = False
    #: Names its list gives that the catalogue doesn't know.
    unknown: Sequence[str] = ()


class AllRelaysUnavailableError(UnavailableError):
    """Every relay refused the job, was unreachable, or is cooling down."""


class RelayPool:
    """The engine's relay: picks the first healthy relay that takes the job."""

    def __init__(
        self,
        members: Sequence[tuple[str, RelayClient]],
        *,
        clock: Clock | None = None,
        threshold: int = 3,
        cooldown: float = 60.0,
        catalogue: Catalogue | None = None,
        offers_ttl: float = OFFERS_TTL,
    ) -> None:
        if not members:
            raise ValueError("a relay pool needs at least one relay")
        self.clock = clock or SystemClock()
        self.members = [
            PoolMember(
                name, client, CircuitBreaker(self.clock, threshold=threshold, cooldown=cooldown)
            )
            for name, client in members
        ]
        self._by_name = {member.name: member for member in self.members}
        #: Where relay callbacks ring the polls of their tasks (see `bot.relay.callbacks`).
        self.callbacks = Callbacks(self.clock)
        #: The models the bot knows (which formats carry each, and under what name a chat
        #: relay lists it); without one, a model is offered where a list names it.
        self.catalogue = catalogue
        self.offers_ttl = offers_ttl
        self._listing: dict[str, asyncio.Task[None]] = {}  # model-list reads in flight

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        catalogue: Catalogue | None = None,
    ) -> RelayPool:
        """Every configured relay, in order (a single `RELAY_*` relay is named "default").

        With `PUBLIC_BASE_URL` (and the notice listener's secret) task-format submits ask
        for callbacks; `callbacks` then collects them for the listener to ring.
        `catalogue`: the models (else the settings' `MODELS_FILE`, read again)."""
        catalogue = catalogue or settings.catalogue()
        pool = cls(
            [
                (
                    config.name,
                    RelayClient.from_config(
                        config,
                        timeout=settings.relay_timeout,
                        polls_per_second=settings.relay_polls_per_second,
                        clock=clock,
                        stream_idle=settings.relay_stream_idle_seconds,
                        requests_per_minute=settings.relay_requests_per_minute,
                        catalogue=catalogue,
                    ),
                )
                for config in settings.relay_configs()
            ],
            clock=clock,
            threshold=settings.relay_failure_threshold,
            cooldown=settings.relay_cooldown_seconds,
            catalogue=catalogue,
            offers_ttl=settings.relay_models_refresh_seconds,
        )
        secret = settings.relay_webhook_secret
        if settings.public_base_url and secret is not None:
            for member in pool.members:
                url = callback_url(settings.public_base_url, secret.get_secret_value(), member.name)
                member.client.hook = Hook(url, member.name, pool.callbacks)
        return pool

    def set_share(self, processes: int) -> None:
        """Several bot processes use the same relay keys: each keeps its share of every
        relay's request budget (`RequestBudget.set_share`)."""
        for member in self.members:
            member.client.budget.set_share(processes)

    @property
    def primary(self) -> RelayClient:
        return self.members[0].client

    @property
    def format(self) -> RelayFormat:
        return self.primary.format

    def format_for(self, request: VideoRequest) -> RelayFormat:
        """The format the job will most likely use: that of the first relay that offers its
        model (its format carries it, per the catalogue); the engine records the real one
        when a relay accepts it, and refuses a model no relay offers."""
        for member in self.members:
            if self.member_offers(member, request.model):
                return member.client.format_for(request)
        return self.primary.format_for(request)

    async def aclose(self) -> None:
        for task in list(self._listing.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for member in self.members:
            await member.client.aclose()

    # -- the engine's side ------------------------------------------------------------

    async def generate(
        self,
        request: VideoRequest,
        *,
        deadline: float | None = None,
        relay_name: str | None = None,
        history: History | None = None,
    ) -> AsyncIterator[Event]:
        """Offer the job to each relay in turn until one accepts it, then follow that one.

        `relay_name` pins the job to one relay (a remix must go where its source is). When
        every relay answered "too many requests", they all refused the job, so after the
        wait they asked for (capped) the round is tried once more. `history` says how long
        such renders took lately on a relay (by name): it seeds when that relay is read.
        """
        last: RelayError | None = None
        candidates = self._candidates(relay_name)
        if relay_name is None:
            # Only relays that sell this model (or may: their list is unknown) see it.
            self.refresh_stale_offers()
            candidates = [m for m in candidates if self.member_offers(m, request.model)]
            if not candidates:
                raise ModelNotOfferedError(f"no relay offers {request.model!r}")
        for round_ in range(2):
            for member in candidates:
                # Asked at the moment of sending, not when the list was made: of several
                # jobs arriving while a breaker is half-open, only one is its trial.
                permit: Permit = "normal"
                if relay_name is None and (permit := member.breaker.acquire()) is None:
                    continue
                accepted = False
                try:
                    expected = None if history is None else await history(member.name)
                    async with aclosing(
                        member.client.generate(request, deadline=deadline, expected=expected)
                    ) as events:
                        async for event in events:
                            if isinstance(event, Submitted) and not accepted:
                                accepted = True
                                member.breaker.succeeded()
                                yield Submitted(
                                    event.relay_id,
                                    relay=member.name,
                                    format=member.client.format_for(request),
                                )
                                continue
                            yield event
                    return
                except RelayError as exc:
                    if accepted or not exc.safe_to_resubmit:
                        if not accepted and isinstance(exc, UnavailableError):
                            member.breaker.failed(exc)
                        raise
                    if isinstance(exc, ModelUnavailableError):
                        # The relay answered: it is healthy, it just has no channel for
                        # this model now. Its list is read again; other models still go.
                        self.refresh_offers_soon(member)
                    else:
                        member.breaker.failed(exc)
                    log.warning("relay %s did not take the job (%s)", member.name, exc.code)
                    last = exc
                finally:
                    if not accepted:
                        member.breaker.release(permit)  # no verdict (e.g. cancelled)
            if round_ == 0 and isinstance(last, RateLimitedError):
                wait = min(last.retry_after or RATE_LIMIT_WAIT, MAX_RATE_LIMIT_WAIT)
                log.info("every relay is rate-limited; trying again in %.0f s", wait)
                await self.clock.sleep(wait)
                continue
            break
        raise last or AllRelaysUnavailableError("every relay is cooling down after failures")

    def resume(
        self,
        relay_id: str,
        format: RelayFormat,
        *,
        deadline: float | None = None,
        relay_name: str | None = None,
        expected: float | None = None,
        elapsed: float = 0.0,
    ) -> AsyncIterator[Event]:
        """Poll a job where it was submitted; it is never moved to another relay."""
        member = self.client_member(relay_name)
        return member.client.resume(
            relay_id, format, deadline=deadline, expected=expected, elapsed=elapsed
        )

    def _candidates(self, relay_name: str | None) -> list[PoolMember]:
        if relay_name is not None:
            return [self.client_member(relay_name)]
        return list(self.members)  # each breaker is asked as the job reaches it

    def client_member(self, relay_name: str | None) -> PoolMember:
        member = self._by_name.get(relay_name or "")
        if member is None and relay_name not in (None, "default"):
            raise TaskNotFoundError(f"relay {relay_name!r} is no longer configured")
        return member or self.members[0]

    # -- which models each relay offers ----------------------------------------------

    async def refresh_offers(self, names: Collection[str] | None = None) -> None:
        """Read the model list of every relay (or of those named) now, together; a relay
        that fails keeps its last list (or stays unknown). Never raises a relay error."""
        members = [m for m in self.members if names is None or m.name in names]
        await asyncio.gather(*(self._read_offers(m) for m in members))

    async def read_offers_at_start(self, wait: float) -> None:
        """Ask every relay for its list, waiting at most `wait` real seconds: a slow relay
        must not hold the bot's start-up (it answers in the background; until then it
        is unknown, so it may still take any model its format carries)."""
        tasks = [self.refresh_offers_soon(member) for member in self.members]
        await asyncio.wait(tasks, timeout=wait)

    def refresh_offers_soon(self, member: PoolMember) -> asyncio.Task[None]:
        """Read one relay's list in the background (once at a time per relay)."""
        task = self._listing.get(member.name)
        if task is None or task.done():
            task = asyncio.create_task(self._read_offers(member), name=f"models-{member.name}")
            self._listing[member.name] = task
            task.add_done_callback(lambda done: self._listing_done(member.name, done))
        return task

    def _listing_done(self, name: str, task: asyncio.Task[None]) -> None:
        if self._listing.get(name) is task:
            del self._listing[name]

    def refresh_stale_offers(self) -> None:
        """Start reading the lists not tried for `offers_ttl`; never waits for them (the
        last answer serves meanwhile), so autocomplete and submits stay fast."""
        now = self.clock.monotonic()
        for member in self.members:
            tried = member.listing_tried
            if tried is None or now - tried >= self.offers_ttl:
                self.refresh_offers_soon(member)

    async def _read_offers(self, member: PoolMember) -> None:
        member.listing_tried = self.clock.monotonic()
        try:
            names = await member.client.list_models()
        except RelayError as exc:
            member.listing_error = exc.code
            log.info(
                "relay %s: no model list (%s); %s",
                member.name,
                exc.code,
                "keeping the last one" if member.listed is not None else "it may offer any model",
            )
            return
        except Exception:  # a background read must never take anything else down
            member.listing_error = "internal"
            log.exception("relay %s: reading its model list failed", member.name)
            return
        self._note_listing(member, names)

    def _note_listing(self, member: PoolMember, names: Iterable[str]) -> None:
        listed = frozenset(names)
        if not listed:  # an empty list says nothing about what the key may render
            member.listing_error = "empty_list"
            return
        if listed != member.listed:
            log.info("relay %s lists %d models", member.name, len(listed))
        member.listed = listed
        member.listed_at = self.clock.monotonic()
        member.listing_error = None

    def member_offers(self, member: PoolMember, model: str) -> bool:
        """Whether this relay can render `model`: its format carries the model (per the
        catalogue) and its list names it, or it has no list. Names compare without case."""
        entry = self.catalogue.get(model) if self.catalogue is not None else None
        fmt = member.format
        if entry is not None and fmt not in entry.formats:
            return False
        listed = member.listed_keys
        if listed is None:
            return True
        if fmt == "chat":  # a chat relay lists the family, or the family with suffixes
            return _lists_family(listed, self._chat_family(member, model))
        return (entry.name if entry is not None else model).lower() in listed

    def _chat_family(self, member: PoolMember, model: str) -> str:
        entry = self.catalogue.get(model) if self.catalogue is not None else None
        family = entry.chat.family if entry is not None else None
        return family or member.client.chat_model

    def healthy_members(self) -> list[PoolMember]:
        """Relays whose breaker is not open (all of them, when every one is)."""
        return [m for m in self.members if m.breaker.state != "open"] or list(self.members)

    def offers(self, model: str) -> bool:
        """Whether some healthy relay offers `model` (or may: its list is unknown)."""
        self.refresh_stale_offers()
        return any(self.member_offers(m, model) for m in self.healthy_members())

    def offered_models(self) -> set[str] | None:
        """The catalogue models some healthy relay offers; without a catalogue, the names
        the healthy relays list, or None when one of them has no list (anything goes)."""
        self.refresh_stale_offers()
        healthy = self.healthy_members()
        if self.catalogue is not None:
            return {
                name
                for name in self.catalogue.names()
                if any(self.member_offers(m, name) for m in healthy)
            }
        if any(m.listed is None for m in healthy):
            return None
        return set().union(*(m.listed or () for m in healthy))

    def offered_names(self) -> frozenset[str] | None:
        """`offered_models` in lower case, for the model menus (autocomplete): read from the
        cache, never waiting on a relay. None: not known, every model may be shown."""
        offered = self.offered_models()
        return None if offered is None else frozenset(name.lower() for name in offered)

    def offered_by(self, member: PoolMember) -> list[str]:
        """The catalogue models this relay offers (or may, with no list), in catalogue order."""
        if self.catalogue is None:
            return sorted(member.listed or ())
        return [name for name in self.catalogue.names() if self.member_offers(member, name)]

    def unknown_names(self, member: PoolMember) -> list[str]:
        """Names this relay lists that no catalogue model goes by (new models, or the
        relay's text models): what an operator may want to add to MODELS_FILE."""
        if member.listed is None or self.catalogue is None:
            return []
        known = {name.lower() for name in self.catalogue.names()}
        families = {
            self._chat_family(member, e.name).lower() for e in self.catalogue if "chat" in e.formats
        }
        return sorted(
            name
            for name in member.listed
            if name.lower() not in known
            and not any(_lists_family({name.lower()}, f) for f in families)
        )

    # -- everything else a relay does -------------------------------------------------

    def client_for(self, relay_name: str | None) -> RelayClient:
        return self.client_member(relay_name).client

    async def create_character(
        self,
        *,
        url: str | None = None,
        from_task: str | None = None,
        start: float,
        end: float,
        relay_name: str | None = None,
    ) -> Character:
        """Characters live on one relay: the one the source video came from, or the first."""
        client = self.client_for(relay_name)
        return await client.create_character(url=url, from_task=from_task, start=start, end=end)

    async def list_models(self) -> list[str]:
        return await self.primary.list_models()

    async def download(
        self, location: str, *, max_bytes: int, relay_name: str | None = None
    ) -> bytes | None:
        """A finished video; a relay path (no public link) is fetched from the job's relay,
        with that relay's key."""
        return await self.client_for(relay_name).download(location, max_bytes=max_bytes)

    async def fetch_into(
        self, location: str, sink: BinaryIO, *, max_bytes: int | None, relay_name: str | None = None
    ) -> bool:
        """Stream a finished video into `sink` (a file, so memory does not grow with the
        video); False if it is larger than `max_bytes`. A relay path goes to the job's relay."""
        return await self.client_for(relay_name).fetch_into(location, sink, max_bytes=max_bytes)

    def note_low_credit(self, relay_name: str | None, quota: float | None) -> PoolMember:
        """A relay said its account is running out; remember it for `/relay status`."""
        member = self.client_member(relay_name)
        member.low_credit_noticed = True
        member.low_credit = quota
        return member

    async def health(self) -> list[RelayHealth]:
        """Ask every relay for its models; a failure is reported, never raised."""
        report = []
        for member in self.members:
            started = time.perf_counter()
            member.listing_tried = self.clock.monotonic()
            try:
                models = await member.client.list_models()
            except RelayError as exc:
                member.listing_error = exc.code
                log.info(
                    "relay %s: health check failed: %s (%s)", member.name, exc.code, exc.detail
                )
                report.append(
                    RelayHealth(
                        member.name,
                        False,
                        None,
                        (),
                        exc.user_message,
                        member.client.format,
                        member.breaker.state,
                        member.low_credit,
                        member.low_credit_noticed,
                        exc.code,
                        exc.detail,
                        self.offered_by(member),
                        member.listed is not None,
                        self.unknown_names(member),
                    )
                )
                continue
            self._note_listing(member, models)
            report.append(
                RelayHealth(
                    member.name,
                    True,
                    time.perf_counter() - started,
                    models,
                    None,
                    member.client.format,
                    member.breaker.state,
                    member.low_credit,
                    member.low_credit_noticed,
                    offers=self.offered_by(member),
                    listed=member.listed is not None,
                    unknown=self.unknown_names(member),
                )
            )
        return report

"""What the fake remembers: guild layout, every message a member would see, and logs.

Every mutation calls `Changes.notify()`, which is what `wait_until`-style helpers
await; nothing here polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ._wire import ALL_PERMISSIONS, PERMISSIONS, iso_now

if TYPE_CHECKING:
    from .server import FakeDiscord

T = TypeVar("T")

EPHEMERAL = 1 << 6
LOADING = 1 << 7


class Changes:
    """A broadcast "something changed" signal: waiters re-check their predicate on each."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.version = 0

    def notify(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(self, probe: Callable[[], T | None], timeout: float) -> T:  # noqa: ASYNC109
        """Return the first truthy `probe()` result, checking now and after each change."""

        async def loop() -> T:
            while True:
                event = self._event
                result = probe()
                if result:
                    return result
                await event.wait()

        return await asyncio.wait_for(loop(), timeout)


# --------------------------------------------------------------------------- layout


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False
    color: int = 0

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {
                "primary_color": self.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class FakeUser:
    id: int
    name: str
    bot: bool = False
    global_name: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.global_name or self.name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class FakeMember:
    user: FakeUser
    guild_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None

    @property
    def id(self) -> int:
        return self.user.id

    def payload(self, permissions: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "user": self.user.payload(),
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "joined_at": iso_now(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            out["permissions"] = str(permissions)
        return out


@dataclass
class FakeChannel:
    id: int
    guild_id: int
    name: str
    type: int = 0  # 0 text
    position: int = 0
    topic: str | None = None
    # Discord overwrite dicts: {"id", "type" (0 role, 1 member), "allow", "deny"} with int masks.
    overwrites: list[dict[str, Any]] = field(default_factory=list)

    def payload(self, *, with_guild_id: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "name": self.name,
            "position": self.position,
            "parent_id": None,
            "topic": self.topic,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
            "permission_overwrites": [
                {
                    "id": str(o["id"]),
                    "type": o["type"],
                    "allow": str(o.get("allow", 0)),
                    "deny": str(o.get("deny", 0)),
                }
                for o in self.overwrites
            ],
        }
        if with_guild_id:
            out["guild_id"] = str(self.guild_id)
        return out


@dataclass
class FakeDMChannel:
    """The direct-message channel between the bot and one user (channel type 1)."""

    id: int
    recipient: FakeUser

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self.recipient.payload()],
        }


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    preferred_locale: str = "en-US"
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]

    def channel(self, name: str) -> FakeChannel:
        """Channel by name, for tests that prefer `guild.channel("videos").id`."""
        for ch in self.channels.values():
            if ch.name == name:
                return ch
        raise KeyError(name)

    def base_permissions(self, member: FakeMember) -> int:
        if member.id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.everyone.permissions
        for rid in member.roles:
            role = self.roles.get(rid)
            if role:
                value |= role.permissions
        if value & PERMISSIONS["administrator"]:
            return ALL_PERMISSIONS
        return value

    def channel_permissions(self, member: FakeMember, channel: FakeChannel) -> int:
        """Discord's overwrite algorithm: @everyone, then roles, then the member."""
        value = self.base_permissions(member)
        if value == ALL_PERMISSIONS:
            return value
        ows = {(o["type"], int(o["id"])): o for o in channel.overwrites}
        if ev := ows.get((0, self.id)):
            value = (value & ~int(ev.get("deny", 0))) | int(ev.get("allow", 0))
        allow = deny = 0
        for rid in member.roles:
            if ow := ows.get((0, rid)):
                allow |= int(ow.get("allow", 0))
                deny |= int(ow.get("deny", 0))
        value = (value & ~deny) | allow
        if mo := ows.get((1, member.id)):
            value = (value & ~int(mo.get("deny", 0))) | int(mo.get("allow", 0))
        return value

    def payload(self, bot_member: FakeMember) -> dict[str, Any]:
        members = [bot_member, *(m for m in self.members.values() if m.id != bot_member.id)]
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": self.preferred_locale,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": [c.payload(with_guild_id=False) for c in self.channels.values()],
            "threads": [],
            "members": [m.payload() for m in members],
            "member_count": len(members),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
            "joined_at": iso_now(),
            "lazy": True,
            "application_id": None,
            "max_members": 500000,
        }


# --------------------------------------------------------------------------- recordings


@dataclass
class RecordedAttachment:
    """A file as stored by the fake; `data` holds the exact uploaded bytes."""

    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type:
            out["content_type"] = self.content_type
        if self.description:
            out["description"] = self.description
        if self.ephemeral:
            out["ephemeral"] = True
        return out


@dataclass(frozen=True)
class MessageVersion:
    """One state of a message; `RecordedMessage.history` lists them oldest first."""

    content: str
    embeds: tuple[dict[str, Any], ...]
    components: tuple[dict[str, Any], ...]
    attachment_names: tuple[str, ...]
    flags: int
    at: float


@dataclass
class RecordedMessage:
    """A message as a member would see it, with its full edit history."""

    id: int
    channel_id: int
    guild_id: int | None
    author: dict[str, Any]
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[RecordedAttachment] = field(default_factory=list)
    flags: int = 0
    allowed_mentions: dict[str, Any] | None = None
    type: int = 0
    interaction_id: int | None = None
    webhook_id: int | None = None
    created_at: float = 0.0
    created_iso: str = field(default_factory=iso_now)
    edited_iso: str | None = None
    history: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False
    deleted_by: str | None = None  # "bot" or "moderator"

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def thinking(self) -> bool:
        """True while this is the "Bot is thinking…" placeholder of a deferred interaction."""
        return bool(self.flags & LOADING)

    @property
    def edit_count(self) -> int:
        return len(self.history) - 1

    @property
    def contents(self) -> list[str]:
        """Every content this message had, oldest first."""
        return [v.content for v in self.history]

    def custom_ids(self) -> list[str]:
        """custom_ids of every component, walking rows and containers."""
        found: list[str] = []

        def walk(items: list[dict[str, Any]]) -> None:
            for item in items:
                if "custom_id" in item:
                    found.append(item["custom_id"])
                walk(item.get("components", []))
                if "component" in item:
                    walk([item["component"]])
                if "accessory" in item:
                    walk([item["accessory"]])

        walk(self.components)
        return found

    def find_component(self, custom_id: str) -> dict[str, Any] | None:
        def walk(items: list[dict[str, Any]]) -> dict[str, Any] | None:
            for item in items:
                if item.get("custom_id") == custom_id:
                    return item
                nested = list(item.get("components", []))
                nested += [item[k] for k in ("component", "accessory") if k in item]
                if hit := walk(nested):
                    return hit
            return None

        return walk(self.components)

    def snapshot(self, at: float) -> None:
        self.history.append(
            MessageVersion(
                content=self.content,
                embeds=tuple(self.embeds),
                components=tuple(self.components),
                attachment_names=tuple(a.filename for a in self.attachments),
                flags=self.flags,
                at=at,
            )
        )

    def payload(self, application_id: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "type": self.type,
            "content": self.content,
            "author": self.author,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": [a.payload() for a in self.attachments],
            "flags": self.flags,
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": self.created_iso,
            "edited_timestamp": self.edited_iso,
        }
        if self.guild_id is not None:
            out["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            out["webhook_id"] = str(self.webhook_id)
        if application_id is not None and self.interaction_id is not None:
            out["application_id"] = str(application_id)
        return out


@dataclass(frozen=True)
class RequestRecord:
    """One REST request the bot made, for assertions like "three PATCHes, one 429"."""

    method: str
    path: str  # below /api/v10, e.g. /channels/1/messages/2
    route: str  # template, e.g. /channels/{channel_id}/messages/{message_id}
    status: int
    code: int | None
    body: Any
    files: tuple[tuple[str, int], ...]
    at: float


@dataclass(frozen=True)
class GatewayRecord:
    """One gateway frame; direction "recv" is from the bot, "send" to it."""

    direction: str
    op: int
    t: str | None
    s: int | None
    shard_id: int | None
    path: str
    at: float


@dataclass
class CallbackRecord:
    type: int
    data: dict[str, Any]
    at: float


@dataclass
class FakeInteraction:
    """An interaction the fake dispatched, and everything the bot did with it."""

    fake: FakeDiscord
    id: int
    token: str
    type: int
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: dict[str, Any]
    created_at: float
    response: CallbackRecord | None = None
    dispatched_at: float | None = None  # when INTERACTION_CREATE was written to the socket
    original: RecordedMessage | None = None
    followups: list[RecordedMessage] = field(default_factory=list)
    message: RecordedMessage | None = None  # the message a component lives on

    @property
    def name(self) -> str | None:
        return self.payload["data"].get("name")

    @property
    def responded(self) -> bool:
        return self.response is not None

    @property
    def response_type(self) -> int | None:
        return self.response.type if self.response else None

    @property
    def deferred(self) -> bool:
        return self.response_type in (5, 6)

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        """Autocomplete choices (type 8 response), if any."""
        if self.response and self.response.type == 8:
            return list(self.response.data.get("choices", []))
        return None

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened (type 9 response), if any."""
        if self.response and self.response.type == 9:
            return self.response.data
        return None

    @property
    def messages(self) -> list[RecordedMessage]:
        out = [self.original] if self.original else []
        return out + [m for m in self.followups if m is not self.original]

    async def wait_for_response(self, timeout: float = 5.0) -> CallbackRecord:  # noqa: ASYNC109
        """Until the bot's callback (ack, defer, message, modal, choices) arrives."""
        return await self.fake.changes.wait_for(lambda: self.response, timeout)

    async def wait_until(
        self,
        predicate: Callable[[FakeInteraction], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> FakeInteraction:
        """Until `predicate(self)` holds; checked now and after every recorded change."""
        return await self.fake.changes.wait_for(lambda: self if predicate(self) else None, timeout)

    async def wait_for_followup(self, index: int = 0, timeout: float = 5.0) -> RecordedMessage:  # noqa: ASYNC109
        """The index-th follow-up (a follow-up that replaced "thinking" counts as one)."""

        def probe() -> RecordedMessage | None:
            return self.followups[index] if len(self.followups) > index else None

        return await self.fake.changes.wait_for(probe, timeout)

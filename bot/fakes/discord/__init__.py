"""A loopback fake of Discord that the real, unpatched discord.py client runs against.

See `FakeDiscord` for the API; `bot.fakes.discord_testing` has pytest helpers.
"""

from ._wire import (
    ALL_PERMISSIONS,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    PERMISSIONS,
    ApiError,
    SteerableClock,
    json_response,
    perms,
)
from .ratelimit import FailRule
from .records import (
    EPHEMERAL,
    LOADING,
    CallbackRecord,
    FakeChannel,
    FakeDMChannel,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeRole,
    FakeUser,
    GatewayRecord,
    MessageVersion,
    RecordedAttachment,
    RecordedMessage,
    RequestRecord,
)
from .server import DROP, FakeDiscord

__all__ = [
    "ALL_PERMISSIONS",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "DROP",
    "EPHEMERAL",
    "LOADING",
    "PERMISSIONS",
    "ApiError",
    "CallbackRecord",
    "FailRule",
    "FakeChannel",
    "FakeDMChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "GatewayRecord",
    "MessageVersion",
    "RecordedAttachment",
    "RecordedMessage",
    "RequestRecord",
    "SteerableClock",
    "json_response",
    "perms",
]

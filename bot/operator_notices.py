"""Relay account notices, turned into something the operator will see.

A `user_quota_too_low` notice means members' videos will soon fail with "out of credit".
It is logged as a warning, shown in `/relay status`, and posted to the operator's channel
(`OPERATOR_CHANNEL_ID`) at most once every few hours per relay, so a relay that repeats
its notice every minute doesn't flood anyone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import discord

from bot.relay.errors import TaskNotFoundError
from bot.relay.webhook import AccountNotice
from bot.ui.i18n import t

if TYPE_CHECKING:
    from bot.app import VideoBot

log = logging.getLogger(__name__)

LOW_CREDIT = "user_quota_too_low"


class OperatorNotices:
    def __init__(
        self, bot: VideoBot, *, channel_id: int | None, every: timedelta = timedelta(hours=6)
    ) -> None:
        self.bot = bot
        self.channel_id = channel_id
        self.every = every
        self._last_post: dict[str, datetime] = {}

    async def handle(self, notice: AccountNotice) -> None:
        if notice.topic != LOW_CREDIT:
            log.info("relay notice %r ignored", notice.topic)
            return
        try:
            member = self.bot.relay.note_low_credit(notice.relay, notice.remaining_quota)
        except TaskNotFoundError:
            log.warning("low-credit notice for unknown relay %r", notice.relay)
            return
        quota = notice.remaining_quota
        shown = "?" if quota is None else f"{quota:g}"
        log.warning("relay %s: account credit is low (%s left)", member.name, shown)
        await self._tell_operator(member.name, shown)

    async def _tell_operator(self, relay: str, quota: str) -> None:
        if self.channel_id is None:
            return
        now = self.bot.clock.now()
        last = self._last_post.get(relay)
        if last is not None and now - last < self.every:
            return
        self._last_post[relay] = now
        channel = self.bot.get_partial_messageable(self.channel_id)
        try:
            await channel.send(
                t("relay.operator_low_credit", None, relay=relay, quota=quota),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.warning("could not post the low-credit notice (HTTP %s)", exc.status)

"""The real discord.py AutoShardedBot against FakeDiscord over loopback."""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.http import handle_message_parameters

from bot.fakes.discord import FakeDiscord, FakeInteraction, SteerableClock, perms
from bot.fakes.discord_testing import FakeFriendlyBot, make_bot, running_bot

WINDOW = 0.6  # a short edit/message window keeps the rate-limit tests quick


class Confirm(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=30)

    @discord.ui.button(label="Confirm", custom_id="confirm", style=discord.ButtonStyle.green)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="confirmed", view=None)

    @discord.ui.button(label="Describe", custom_id="describe")
    async def describe(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_modal(Describe())


class Describe(discord.ui.Modal, title="Describe the video"):
    prompt: discord.ui.TextInput = discord.ui.TextInput(label="Prompt", custom_id="prompt")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"prompt={self.prompt.value}", ephemeral=True)


class Probe(commands.Cog):
    """Tiny commands that exercise each Discord behaviour the fake must get right."""

    def __init__(self, bot: commands.AutoShardedBot) -> None:
        self.bot = bot
        self.gate = asyncio.Event()
        self.seen: dict[str, Any] = {}
        self.errors: list[discord.HTTPException] = []

    @app_commands.command(description="defer, follow up, edit")
    async def ping(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None
        self.seen.update(
            guild=interaction.guild.id,
            locale=str(interaction.locale),
            can_send=interaction.app_permissions.send_messages,
            user_admin=interaction.permissions.administrator,
        )
        await interaction.response.defer()
        msg = await interaction.followup.send("pong", wait=True)
        await msg.edit(content="pong!")

    @app_commands.command(description="ephemeral defer")
    async def secret(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        await interaction.followup.send("hidden")
        await interaction.followup.send("also hidden", ephemeral=True)

    @app_commands.command(description="defer, wait for the test, then follow up")
    async def later(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await self.gate.wait()
        try:
            await interaction.followup.send("done")
        except discord.HTTPException as exc:
            self.errors.append(exc)
            assert isinstance(interaction.channel, discord.TextChannel)
            await interaction.channel.send("done (token expired)")

    @app_commands.command(description="wait for the test before answering at all")
    async def slow(self, interaction: discord.Interaction) -> None:
        await self.gate.wait()
        try:
            await interaction.response.defer()
        except discord.HTTPException as exc:
            self.errors.append(exc)

    @app_commands.command(description="upload a file of the given size")
    async def upload(self, interaction: discord.Interaction, size: int) -> None:
        await interaction.response.defer()
        blob = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        try:
            await interaction.followup.send("here", file=discord.File(io.BytesIO(blob), "v.mp4"))
        except discord.HTTPException as exc:
            self.errors.append(exc)
            await interaction.followup.send("too big")

    @app_commands.command(description="hash an attachment")
    async def digest(
        self, interaction: discord.Interaction, image: discord.Attachment, note: str = ""
    ) -> None:
        data = await image.read()
        sha = hashlib.sha256(data).hexdigest()[:12]
        await interaction.response.send_message(f"{image.filename} {len(data)} {sha} {note}")

    @app_commands.command(description="a message with buttons")
    async def buttons(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Confirm?", view=Confirm())

    @app_commands.command(description="autocomplete a style")
    async def style(self, interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(f"style={name}")

    @style.autocomplete("name")
    async def style_complete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = ["cinematic", "cartoon", "claymation", "documentary"]
        return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

    @app_commands.command(description="post in the channel, then edit it many times")
    async def spam(self, interaction: discord.Interaction, edits: int) -> None:
        await interaction.response.send_message("working", ephemeral=True)
        assert isinstance(interaction.channel, discord.TextChannel)
        msg = await interaction.channel.send("edit 0")
        await asyncio.gather(*(msg.edit(content=f"edit {i}") for i in range(1, edits + 1)))
        await msg.edit(content="final")

    @app_commands.command(description="post in the channel")
    async def post(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        assert isinstance(interaction.channel, discord.TextChannel)
        try:
            await interaction.channel.send("posted")
        except discord.HTTPException as exc:
            self.errors.append(exc)
            await interaction.followup.send(f"cannot post: {exc.code}")

    @app_commands.command(description="say where the command ran")
    async def whereami(self, interaction: discord.Interaction) -> None:
        self.seen.update(
            guild=interaction.guild_id,
            user_type=type(interaction.user).__name__,
            channel_type=type(interaction.channel).__name__,
            in_dm=interaction.context.dm_channel,
        )
        await interaction.response.send_message("here", ephemeral=True)
        assert interaction.channel is not None
        await interaction.channel.send("and a message in the channel")  # type: ignore[union-attr]

    @app_commands.command(description="defer, then a follow-up that may die with its connection")
    async def fragile(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        try:
            await interaction.followup.send("shown")
        except Exception as exc:  # the test looks at what discord.py raised
            self.seen["error"] = exc
            await interaction.edit_original_response(content="shown by the edit")


async def add_probe(bot: commands.AutoShardedBot) -> None:
    await bot.add_cog(Probe(bot))
    await bot.tree.sync()


@pytest.fixture
async def bot(bot_factory: Any) -> FakeFriendlyBot:
    return await bot_factory(setup=add_probe)


def probe(bot: discord.Client) -> Probe:
    assert isinstance(bot, commands.AutoShardedBot)
    cog = bot.get_cog("Probe")
    assert isinstance(cog, Probe)
    return cog


# ----------------------------------------------------------------------------- login & sync


async def test_login_ready_guild_create(fake_discord: FakeDiscord, bot: FakeFriendlyBot) -> None:
    guild = bot.get_guild(fake_discord.guild.id)
    assert guild is not None and guild.name == "Fake Guild"
    assert bot.user is not None and bot.user.id == fake_discord.bot_user.id
    assert guild.me is not None and guild.owner_id == fake_discord.owner.id
    general = guild.get_channel(fake_discord.channel.id)
    assert isinstance(general, discord.TextChannel)
    assert general.permissions_for(guild.me).send_messages
    sent = [r.t for r in fake_discord.gateway_log if r.direction == "send" and r.op == 0]
    assert sent[:2] == ["READY", "GUILD_CREATE"]
    identify = next(r for r in fake_discord.gateway_log if r.op == 2)
    assert identify.shard_id is None and identify.direction == "recv"


async def test_tree_sync_stores_commands(fake_discord: FakeDiscord, bot: FakeFriendlyBot) -> None:
    names = {c["name"] for c in fake_discord.registered_commands()}
    assert {"ping", "digest", "style", "upload"} <= names
    digest = fake_discord.find_command("digest")
    assert digest is not None and digest["id"].isdigit()
    assert [o["type"] for o in digest["options"]] == [11, 3]
    fetched = await bot.tree.fetch_commands()
    assert {c.name for c in fetched} == names
    # A guild copy shadows the global one and is what run_slash targets.
    bot.tree.copy_global_to(guild=discord.Object(fake_discord.guild.id))
    await bot.tree.sync(guild=discord.Object(fake_discord.guild.id))
    guild_ping = fake_discord.find_command("ping", fake_discord.guild.id)
    assert guild_ping is not None and guild_ping["guild_id"] == str(fake_discord.guild.id)
    inter = await fake_discord.run_slash("ping")
    assert inter.payload["data"]["guild_id"] == str(fake_discord.guild.id)
    await inter.wait_until(lambda i: i.original is not None and i.original.content == "pong!")


# ----------------------------------------------------------------------------- interactions


async def test_slash_defer_followup_edit(fake_discord: FakeDiscord, bot: FakeFriendlyBot) -> None:
    inter = await fake_discord.run_slash("ping", locale="fr")
    response = await inter.wait_for_response()
    assert response.type == 5
    await inter.wait_until(lambda i: i.original is not None and i.original.content == "pong!")
    original = inter.original
    assert original is not None
    assert original.contents == ["", "pong", "pong!"]
    assert original.history[0].flags & 128  # the "thinking" placeholder
    assert not original.thinking
    assert inter.followups == [original]  # the follow-up replaced the placeholder
    assert original.edit_count == 2
    patches = fake_discord.requests_matching("PATCH", rf"/messages/{original.id}$")
    assert [r.status for r in patches] == [200]
    seen = probe(bot).seen
    assert seen == {
        "guild": fake_discord.guild.id,
        "locale": "fr",
        "can_send": True,
        "user_admin": False,
    }


async def test_ephemeral_flags(fake_discord: FakeDiscord, bot: FakeFriendlyBot) -> None:
    inter = await fake_discord.run_slash("secret")
    await inter.wait_until(lambda i: len(i.followups) == 2)
    first, second = inter.followups
    assert first is inter.original and first.ephemeral and first.content == "hidden"
    assert second.ephemeral and second.content == "also hidden"


async def test_second_callback_and_late_callback(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    inter = await fake_discord.run_slash("ping")
    await inter.wait_for_response()
    url = f"{fake_discord.url}/api/v10/interactions/{inter.id}/{inter.token}/callback"
    async with aiohttp.ClientSession() as session, session.post(url, json={"type": 5}) as resp:
        assert resp.status == 400
        assert resp.headers["Content-Type"] == "application/json"
        assert (await resp.json())["code"] == 40060

    cog = probe(bot)
    slow = await fake_discord.run_slash("slow")
    fake_discord.clock.advance(3.5)  # type: ignore[attr-defined]
    cog.gate.set()
    await slow.wait_until(lambda _: bool(cog.errors))
    assert isinstance(cog.errors[0], discord.NotFound) and cog.errors[0].code == 10062
    assert slow.response is None


async def test_expired_token_falls_back_to_channel(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    cog = probe(bot)
    inter = await fake_discord.run_slash("later")
    await inter.wait_for_response()
    fake_discord.clock.advance(15 * 60 + 1)  # type: ignore[attr-defined]
    cog.gate.set()
    fallback = await fake_discord.wait_for_message(lambda m: m.content == "done (token expired)")
    assert fallback.channel_id == fake_discord.channel.id and fallback.interaction_id is None
    (error,) = cog.errors
    assert error.status == 401 and error.code == 50027
    assert fake_discord.requests_matching("POST", r"^/webhooks/", status=401)


async def test_autocomplete_round_trip(fake_discord: FakeDiscord, bot: FakeFriendlyBot) -> None:
    choices = await fake_discord.autocomplete("style", {"name": "c"}, focused="name")
    assert [c["value"] for c in choices] == ["cinematic", "cartoon", "claymation"]
    inter = await fake_discord.run_slash("style", {"name": "cartoon"})
    await inter.wait_until(lambda i: i.original is not None)
    assert inter.original is not None and inter.original.content == "style=cartoon"


# ----------------------------------------------------------------------------- rate limits


async def test_fail_next_429_on_edit_is_retried(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    fake_discord.fail_next("PATCH", r"^/webhooks/\d+/[^/]+/messages/", retry_after=0.2)
    inter = await fake_discord.run_slash("ping")
    await inter.wait_until(lambda i: i.original is not None and i.original.content == "pong!")
    assert fake_discord.rate_limited_count == 1
    statuses = [r.status for r in fake_discord.requests_matching("PATCH", r"^/webhooks/")]
    assert statuses == [429, 200]


@pytest.mark.parametrize("fake_discord_options", [{"edit_rate_limit": (5, WINDOW)}])
async def test_channel_edit_bucket_paces_discord_py(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    inter = await fake_discord.run_slash("spam", {"edits": 7})
    msg = await fake_discord.wait_for_message(lambda m: m.content == "final", timeout=10)
    assert msg.edit_count == 8 and inter.original is not None
    edits = fake_discord.requests_matching("PATCH", rf"^/channels/\d+/messages/{msg.id}$")
    ok = [r for r in edits if r.status == 200]
    assert len(ok) == 8
    # The headers told discord.py the bucket was empty, so the 6th edit waited a window.
    assert ok[5].at - ok[0].at >= WINDOW * 0.9
    assert fake_discord.rate_limited_count == len(edits) - 8


@pytest.mark.parametrize("fake_discord_options", [{"edit_rate_limit": (5, WINDOW)}])
async def test_shared_bucket_exhaustion_gives_real_429s(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    """Two processes of one bot share Discord's bucket but not discord.py's view of it."""
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    msg = await channel.send("edit 0")
    other = discord.http.HTTPClient(asyncio.get_running_loop())
    assert fake_discord.token is not None
    await other.static_login(fake_discord.token)
    try:
        mine = [msg.edit(content=f"bot {i}") for i in range(4)]
        theirs = [
            other.edit_message(
                channel.id, msg.id, params=handle_message_parameters(content=f"other {i}")
            )
            for i in range(3)
        ]
        await asyncio.gather(*mine, *theirs)
    finally:
        await other.close()
    await msg.edit(content="final")
    recorded = fake_discord.messages[msg.id]
    assert recorded.content == "final" and recorded.edit_count == 8
    assert fake_discord.rate_limited_count >= 1
    limited = fake_discord.requests_matching("PATCH", status=429)
    assert len(limited) == fake_discord.rate_limited_count


# ----------------------------------------------------------------------------- files


async def test_multipart_upload_recorded(fake_discord: FakeDiscord, bot: FakeFriendlyBot) -> None:
    inter = await fake_discord.run_slash("upload", {"size": 300_000})
    await inter.wait_until(lambda i: bool(i.followups))
    (att,) = inter.followups[0].attachments
    assert att.filename == "v.mp4" and att.size == 300_000
    assert att.data[:3] == b"\x00\x01\x02"
    async with aiohttp.ClientSession() as session, session.get(att.url) as resp:
        assert await resp.read() == att.data


@pytest.mark.parametrize("fake_discord_options", [{"upload_limit": 64 * 1024}])
async def test_upload_over_limit_is_413(fake_discord: FakeDiscord, bot: FakeFriendlyBot) -> None:
    inter = await fake_discord.run_slash("upload", {"size": 65 * 1024})
    await inter.wait_until(lambda i: bool(i.followups))
    assert inter.followups[0].content == "too big"
    (error,) = probe(bot).errors
    assert error.status == 413 and error.code == 40005


async def test_attachment_option_downloads_from_fake_cdn(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    blob = b"\x89PNG" + bytes(1000)
    inter = await fake_discord.run_slash(
        "digest", {"note": "hi"}, attachments={"image": ("cat.png", blob, "image/png")}
    )
    await inter.wait_until(lambda i: i.original is not None)
    sha = hashlib.sha256(blob).hexdigest()[:12]
    assert inter.original is not None
    assert inter.original.content == f"cat.png {len(blob)} {sha} hi"


# ----------------------------------------------------------------------------- channel faults


async def test_missing_permission_and_moderator_delete(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    channel = fake_discord.channel
    await fake_discord.set_channel_permissions(channel.id, deny=perms("send_messages"))
    inter = await fake_discord.run_slash("post")
    await inter.wait_until(lambda i: bool(i.followups))
    assert inter.followups[0].content == "cannot post: 50013"
    assert isinstance(probe(bot).errors[0], discord.Forbidden)
    guild = bot.get_guild(fake_discord.guild.id)
    assert guild is not None and guild.me is not None
    text = guild.get_channel(channel.id)
    assert isinstance(text, discord.TextChannel)
    assert not text.permissions_for(guild.me).send_messages  # CHANNEL_UPDATE reached the cache

    await fake_discord.set_channel_permissions(channel.id)
    sent = await text.send("to be removed")
    await fake_discord.delete_message(channel.id, sent.id)
    with pytest.raises(discord.NotFound) as info:
        await sent.edit(content="too late")
    assert info.value.code == 10008
    assert fake_discord.messages[sent.id].deleted_by == "moderator"


# ----------------------------------------------------------------------------- components


async def test_button_click_and_modal(fake_discord: FakeDiscord, bot: FakeFriendlyBot) -> None:
    inter = await fake_discord.run_slash("buttons")
    await inter.wait_until(lambda i: i.original is not None)
    message = inter.original
    assert message is not None and message.custom_ids() == ["confirm", "describe"]

    opened = await fake_discord.click_button(message, "describe")
    await opened.wait_for_response()
    assert opened.modal is not None and opened.modal["title"] == "Describe the video"
    submitted = await fake_discord.submit_modal(opened, {"prompt": "a cat on the moon"})
    await submitted.wait_until(lambda i: i.original is not None)
    assert submitted.original is not None and submitted.original.ephemeral
    assert submitted.original.content == "prompt=a cat on the moon"

    click = await fake_discord.click_button(message, "confirm")
    await click.wait_until(lambda i: i.response_type == 7)
    assert message.content == "confirmed" and message.components == []
    assert message.contents == ["Confirm?", "confirmed"]


# ----------------------------------------------------------------------------- gateway


async def test_gateway_resume_replays_missed_interaction(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    bot.add_listener(on_resumed)
    await fake_discord.disconnect_gateway(code=4000)
    missed: FakeInteraction = await fake_discord.run_slash("ping")  # sent while offline
    await asyncio.wait_for(resumed.wait(), 5)
    resume = await fake_discord.wait_for_gateway(lambda r: r.op == 6)
    assert resume.path == "/gateway/resume"
    await missed.wait_until(lambda i: i.original is not None and i.original.content == "pong!")
    later = await fake_discord.run_slash("ping")
    await later.wait_until(lambda i: i.original is not None and i.original.content == "pong!")
    identifies = [r for r in fake_discord.gateway_log if r.op == 2]
    assert len(identifies) == 1


async def test_two_shards() -> None:
    async with FakeDiscord(shards=2, clock=SteerableClock()) as fake:
        while {(g >> 22) % 2 for g in fake.guilds} != {0, 1}:
            fake.add_guild(f"Guild {len(fake.guilds)}")
        bot = make_bot(fake)
        await_ready = running_bot(fake, bot)
        async with await_ready:

            @bot.tree.command(description="where am I")
            async def where(interaction: discord.Interaction) -> None:
                await interaction.response.send_message(f"shard {interaction.guild.shard_id}")  # type: ignore[union-attr]

            await bot.tree.sync()
            assert bot.shard_count == 2 and len(bot.guilds) == len(fake.guilds)
            for guild in fake.guilds.values():
                inter = await fake.run_slash("where", guild_id=guild.id)
                await inter.wait_until(lambda i: i.original is not None)
                assert inter.original is not None
                assert inter.original.content == f"shard {(guild.id >> 22) % 2}"
        shards = {r.shard_id for r in fake.gateway_log if r.op == 0 and r.t == "READY"}
        assert shards == {0, 1}


async def test_json_content_type_is_exact(fake_discord: FakeDiscord) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{fake_discord.url}/api/v10/gateway") as resp,
    ):
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers["X-RateLimit-Bucket"]
        assert (await resp.json())["url"] == fake_discord.gateway_url


async def test_subcommand_group_and_member_permissions(
    fake_discord: FakeDiscord, bot_factory: Any
) -> None:
    seen: dict[str, Any] = {}
    video = app_commands.Group(name="video", description="videos")
    styles = app_commands.Group(name="style", description="styles", parent=video)

    @styles.command(name="set", description="set a style")
    async def set_style(interaction: discord.Interaction, name: str, strength: float) -> None:
        seen.update(name=name, strength=strength, admin=interaction.permissions.administrator)
        seen["guild_locale"] = str(interaction.guild_locale)
        await interaction.response.send_message("ok", ephemeral=True)

    async def setup(bot: commands.AutoShardedBot) -> None:
        bot.tree.add_command(video)
        await bot.tree.sync()

    await bot_factory(setup=setup)
    inter = await fake_discord.run_slash(
        "video",
        {"name": "noir", "strength": 2},
        subcommand="style set",
        member_permissions=perms("administrator"),
    )
    await inter.wait_until(lambda i: i.original is not None)
    assert seen == {"name": "noir", "strength": 2.0, "admin": True, "guild_locale": "en-US"}
    (group,) = inter.payload["data"]["options"]
    assert group["type"] == 2 and group["options"][0]["type"] == 1


async def test_point_discord_py_here_restores(fake_discord: FakeDiscord) -> None:
    before = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    with fake_discord.point_discord_py_here():
        assert discord.http.Route.BASE == f"{fake_discord.url}/api/v10"
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake_discord.gateway_url
    assert (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == before


# ----------------------------------------------------------------------------- DMs, drops


async def test_a_dm_interaction_has_a_user_and_a_dm_channel(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    inter = await fake_discord.run_slash("whereami", dm=True)
    assert "guild_id" not in inter.payload and "member" not in inter.payload
    assert inter.payload["context"] == 1 and inter.payload["channel"]["type"] == 1
    await inter.wait_until(lambda i: i.original is not None)
    assert probe(bot).seen == {
        "guild": None,
        "user_type": "User",
        "channel_type": "DMChannel",
        "in_dm": True,
    }
    dm = fake_discord.dm_channel(fake_discord.alice.id)
    posted = await fake_discord.wait_for_message(
        lambda m: m.channel_id == dm.id and not m.ephemeral and m.interaction_id is None
    )
    assert posted.guild_id is None and posted.content == "and a message in the channel"


async def test_a_second_guild_sees_the_same_members(fake_discord: FakeDiscord) -> None:
    other = fake_discord.add_guild("Other Guild")
    async with running_bot(fake_discord, make_bot(fake_discord)) as bot:
        assert {g.id for g in bot.guilds} == {fake_discord.guild.id, other.id}
        assert other.members.keys() == fake_discord.guild.members.keys()


async def test_a_dropped_connection_is_a_network_error_not_an_http_one(
    fake_discord: FakeDiscord, bot: FakeFriendlyBot
) -> None:
    from bot.fakes.discord import DROP

    rule = fake_discord.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=DROP)
    inter = await fake_discord.run_slash("fragile")
    await inter.wait_until(lambda i: i.original is not None and "edit" in i.original.content)
    error = probe(bot).seen["error"]
    assert isinstance(error, aiohttp.ClientError | OSError), error
    assert not isinstance(error, discord.HTTPException)
    assert rule.hits == 1 and inter.followups == []  # nothing was posted by the dropped call
    [dropped] = fake_discord.requests_matching("POST", r"^/webhooks/", status=DROP)
    assert dropped.body["content"] == "shown"

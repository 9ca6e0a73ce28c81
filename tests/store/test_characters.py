"""Character aliases: validation, uniqueness, autocomplete and prompt rewriting."""

from __future__ import annotations

import pytest

from bot.store import ALIAS_RE, AliasError, Database, UnknownAliasError


async def _add(db: Database, alias: str, username: str, guild_id: int = 1) -> None:
    await db.characters.add(
        guild_id, alias, character_id=f"ch_{username}", username=username,
        permalink=f"https://sora.example/{username}", picture_url=None, created_by=5,
    )  # fmt: skip


@pytest.mark.parametrize(
    "alias", ["", "a", "x" * 33, "with space", "dot.ted", "emoji🙂", "semi;colon", "a\nb"]
)
async def test_invalid_aliases(db: Database, alias: str) -> None:
    with pytest.raises(AliasError) as info:
        await _add(db, alias, "u.ser")
    assert info.value.code == "alias_invalid"


@pytest.mark.parametrize("alias", ["ab", "Bob_2", "x" * 32, "night-owl", "@Ana"])
def test_valid_alias_pattern(alias: str) -> None:
    assert ALIAS_RE.match(alias.removeprefix("@"))


async def test_add_get_list_delete_case_insensitive(db: Database, clock: object) -> None:
    await db.characters.add(
        1, "@Bob", character_id="ch1", username="@cookiejar.dancer", permalink="p",
        picture_url="pic", created_by=5,
    )  # fmt: skip
    got = await db.characters.get(1, "BOB")
    assert got is not None
    assert (got.alias, got.username, got.character_id, got.created_by) == (
        "bob", "cookiejar.dancer", "ch1", 5,
    )  # fmt: skip
    assert got.created_at.tzinfo is not None
    with pytest.raises(AliasError) as info:
        await _add(db, "bOb", "other.one")
    assert info.value.code == "alias_taken"
    await _add(db, "bob", "other.one", guild_id=2)  # other guilds are separate
    await _add(db, "alice", "al.ice")
    assert [a.alias for a in await db.characters.list(1)] == ["alice", "bob"]
    assert await db.characters.delete(1, "@BOB")
    assert not await db.characters.delete(1, "bob")
    assert await db.characters.get(1, "bob") is None
    assert (await db.characters.get(2, "bob")) is not None


async def test_search_prefix_escapes_wildcards(db: Database) -> None:
    for name in ["ann", "anna", "andy", "bob", "a_x", "abx"]:
        await _add(db, name, f"{name}.u")
    assert [a.alias for a in await db.characters.search(1, "an")] == ["andy", "ann", "anna"]
    assert [a.alias for a in await db.characters.search(1, "@AN", limit=2)] == ["andy", "ann"]
    assert [a.alias for a in await db.characters.search(1, "a_")] == ["a_x"]
    assert len(await db.characters.search(1, "", limit=100)) == 6
    for i in range(30):
        await _add(db, f"zz{i:02d}", f"z{i}.u")
    assert len(await db.characters.search(1, "zz", limit=100)) == 25


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("@bob dances", " @cookiejar.dancer dances"),
        ("a video of @bob dancing", "a video of @cookiejar.dancer dancing"),
        ("@bob, and @Ana.", " @cookiejar.dancer , and @ana.sings ."),
        ("(@bob) meets @ana!", "( @cookiejar.dancer ) meets @ana.sings !"),
        ("mail bob@example.com about @bob", "mail bob@example.com about @cookiejar.dancer "),
        ("see https://x.com/@bob and @bob", "see https://x.com/@bob and @cookiejar.dancer "),
        ("@bob\n@ana  twice @bob", " @cookiejar.dancer\n@ana.sings  twice @cookiejar.dancer "),
        ("@cookiejar.dancer stays", "@cookiejar.dancer stays"),
        ("no mentions here", "no mentions here"),
        ("@bob@ana", "@bob@ana"),
    ],
)
async def test_rewrite_prompt(db: Database, prompt: str, expected: str) -> None:
    await _add(db, "bob", "cookiejar.dancer")
    await _add(db, "ana", "ana.sings")
    assert await db.characters.rewrite_prompt(1, prompt) == expected


async def test_rewrite_unknown_aliases_are_all_named(db: Database) -> None:
    await _add(db, "bob", "cookiejar.dancer")
    with pytest.raises(UnknownAliasError) as info:
        await db.characters.rewrite_prompt(1, "@bob with @foo and @Bar and @foo again")
    assert info.value.aliases == ["foo", "Bar"]
    assert info.value.code == "alias_unknown"
    assert str(info.value) == "Unknown characters @foo, @Bar; see /character list."
    with pytest.raises(UnknownAliasError, match=r"^Unknown character @bob; see /character list\.$"):
        await db.characters.rewrite_prompt(2, "@bob")  # aliases are per guild
    with pytest.raises(UnknownAliasError):
        await db.characters.rewrite_prompt(None, "@bob in a DM")
    assert await db.characters.rewrite_prompt(None, "@some.user in a DM") == "@some.user in a DM"

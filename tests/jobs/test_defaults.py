"""Which options a video gets: typed, then the member's default, then the server's, then
the catalogue's; stale defaults skipped with a note, restrictions refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bot.jobs.defaults import ModelNotAllowedError, Resolved, Skipped, check_allowed, resolve
from bot.store.preferences import Defaults, Preferences


@dataclass(frozen=True)
class Model:
    name: str
    durations: tuple[int, ...]
    orientations: tuple[str, ...] = ("portrait", "landscape")
    hd: bool = False
    storyboard: bool = True
    default_duration: int | None = None

    @property
    def first_duration(self) -> int:
        return self.default_duration or self.durations[0]


class Catalogue:
    def __init__(self, *models: Model) -> None:
        self.models = {m.name: m for m in models}

    def get(self, name: str) -> Model | None:
        return self.models.get(name)

    @property
    def default(self) -> Model:
        return next(iter(self.models.values()))

    def __iter__(self) -> Iterator[Model]:
        return iter(self.models.values())


SORA = Model("sora-2", (10, 15))
PRO = Model("sora-2-pro", (10, 15, 25), hd=True)
VEO = Model("veo3-fast", (8,), ("landscape", "portrait"), storyboard=False)
CATALOGUE = Catalogue(SORA, PRO, VEO)


def prefs(
    member: Defaults | None = None,
    server: Defaults | None = None,
    allowed: set[str] | None = None,
) -> Preferences:
    return Preferences(
        1, 10, member or Defaults(), server or Defaults(), frozenset(allowed) if allowed else None
    )


def test_nothing_typed_nothing_stored_is_the_catalogue_default() -> None:
    assert resolve(Defaults(), None, CATALOGUE) == Resolved(
        model="sora-2", orientation="portrait", duration=10, hd=False, private=False
    )
    assert resolve(Defaults(), prefs(), CATALOGUE) == resolve(Defaults(), None, CATALOGUE)


def test_typed_beats_member_beats_server_beats_catalogue() -> None:
    stored = prefs(
        member=Defaults(model="sora-2-pro", duration=15),
        server=Defaults(model="sora-2", duration=10, orientation="landscape", private=True),
    )
    chosen = resolve(Defaults(), stored, CATALOGUE)
    assert (chosen.model, chosen.duration, chosen.orientation) == ("sora-2-pro", 15, "landscape")
    assert chosen.private is True and chosen.hd is False and chosen.skipped == ()

    typed = resolve(Defaults(duration=10, private=False), stored, CATALOGUE)
    assert (typed.model, typed.duration, typed.private) == ("sora-2-pro", 10, False)
    # A stored "off" is a value, not "not set": the member's False beats the server's True.
    off = resolve(Defaults(), prefs(Defaults(private=False), Defaults(private=True)), CATALOGUE)
    assert off.private is False


def test_the_commands_own_default_comes_before_the_catalogues() -> None:
    storyboard = Defaults(duration=15)
    assert resolve(Defaults(), None, CATALOGUE, base=storyboard).duration == 15
    member = prefs(Defaults(duration=10))
    assert resolve(Defaults(), member, CATALOGUE, base=storyboard).duration == 10
    # A command default the model can't render is passed over quietly.
    assert resolve(Defaults(model="veo3-fast"), None, CATALOGUE, base=storyboard).duration == 8


def test_a_model_gone_from_the_catalogue_is_skipped_with_a_note() -> None:
    chosen = resolve(Defaults(), prefs(Defaults(model="sora-1")), CATALOGUE)
    assert chosen.model == "sora-2"
    assert chosen.skipped == (Skipped("model", "sora-1", "member", "unknown", "sora-2"),)
    # The server's default is the next level down.
    chosen = resolve(
        Defaults(), prefs(Defaults(model="sora-1"), Defaults(model="sora-2-pro")), CATALOGUE
    )
    assert chosen.model == "sora-2-pro" and [s.reason for s in chosen.skipped] == ["unknown"]


def test_defaults_the_model_cant_render_are_skipped_with_a_note() -> None:
    stored = prefs(Defaults(model="sora-2-pro", duration=25, hd=True))
    chosen = resolve(Defaults(model="sora-2"), stored, CATALOGUE)  # typed: the model wins
    assert (chosen.model, chosen.duration, chosen.hd) == ("sora-2", 10, False)
    assert chosen.skipped == (
        Skipped("duration", 25, "member", "unsupported", 10),
        Skipped("hd", True, "member", "unsupported", False),
    )
    # A member default the model lacks falls to the server's default, if that fits.
    stored = prefs(Defaults(duration=25), Defaults(duration=15))
    assert resolve(Defaults(model="sora-2"), stored, CATALOGUE).duration == 15
    # The orientation too: veo3-fast's first orientation is its own default.
    stored = prefs(Defaults(orientation="square"))
    chosen = resolve(Defaults(model="veo3-fast"), stored, CATALOGUE)
    assert chosen.orientation == "landscape" and chosen.skipped[0].field == "orientation"


def test_a_default_model_that_cant_do_what_was_typed_is_skipped() -> None:
    chosen = resolve(Defaults(duration=25), prefs(Defaults(model="veo3-fast")), CATALOGUE)
    # veo3-fast renders 8 s only; the catalogue default then decides (and validation
    # will say that 25 s needs sora-2-pro, as without any defaults).
    assert chosen.model == "sora-2" and chosen.duration == 25
    assert chosen.skipped == (Skipped("model", "veo3-fast", "member", "unsupported", "sora-2"),)
    # A storyboard skips a default model that can't render one.
    board = resolve(Defaults(), prefs(Defaults(model="veo3-fast")), CATALOGUE, storyboard=True)
    assert board.model == "sora-2" and board.skipped[0].reason == "unsupported"


def test_typed_options_are_never_skipped() -> None:
    chosen = resolve(Defaults(model="sora-2", hd=True, duration=25), None, CATALOGUE)
    # Passed on as typed: validation refuses them with its sentence.
    assert (chosen.model, chosen.hd, chosen.duration) == ("sora-2", True, 25)
    assert chosen.skipped == ()


def test_restrictions_refuse_a_typed_model_and_skip_a_stored_one() -> None:
    restricted = prefs(Defaults(model="sora-2-pro"), allowed={"sora-2", "veo3-fast"})
    with pytest.raises(ModelNotAllowedError) as refused:
        resolve(Defaults(model="sora-2-pro"), restricted, CATALOGUE)
    assert refused.value.model == "sora-2-pro"
    assert refused.value.allowed == ("sora-2", "veo3-fast")  # catalogue order
    chosen = resolve(Defaults(), restricted, CATALOGUE)
    assert chosen.model == "sora-2"
    assert chosen.skipped == (Skipped("model", "sora-2-pro", "member", "not_allowed", "sora-2"),)


def test_when_the_catalogue_default_is_not_allowed_the_first_allowed_model_is_used() -> None:
    only_pro = prefs(allowed={"sora-2-pro"})
    assert resolve(Defaults(), only_pro, CATALOGUE).model == "sora-2-pro"
    pro_or_veo = prefs(allowed={"veo3-fast", "sora-2-pro"})
    # One that can render what was typed is preferred.
    assert resolve(Defaults(duration=8), pro_or_veo, CATALOGUE).model == "veo3-fast"
    assert resolve(Defaults(duration=25), pro_or_veo, CATALOGUE).model == "sora-2-pro"
    # Allowed models all gone from the catalogue: nothing can be rendered here.
    with pytest.raises(ModelNotAllowedError) as refused:
        resolve(Defaults(), prefs(allowed={"sora-1"}), CATALOGUE)
    assert refused.value.allowed == ()


def test_check_allowed() -> None:
    check_allowed("sora-2-pro", None)
    check_allowed("sora-2", {"sora-2"})
    with pytest.raises(ModelNotAllowedError) as refused:
        check_allowed("sora-2-pro", {"veo3-fast", "sora-2"})
    assert refused.value.allowed == ("sora-2", "veo3-fast")

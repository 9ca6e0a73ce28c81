"""The model catalogue (issue 11): shipped defaults, an operator's file, rules and prices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.catalogue import Catalogue, CatalogueError, load_catalogue, shipped_catalogue
from bot.relay.models import InvalidRequest, VideoRequest
from bot.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def req(**fields: Any) -> VideoRequest:
    """A request as the catalogue sees it: structural checks only (model rules are ours)."""
    fields.setdefault("prompt", "a lighthouse")
    fields.setdefault("model", "sora-2")
    return VideoRequest.build(prompt="x").model_copy(update=fields)


def refusal(catalogue: Catalogue, **fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        catalogue.check(req(**fields))
    return info.value


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- Shipped defaults ------------------------------------------------------------------


def test_shipped_defaults_keep_todays_sora_rules_and_prices() -> None:
    cat = load_catalogue(None)
    assert cat.names()[:2] == ["sora-2", "sora-2-pro"]
    assert cat.default.name == "sora-2"
    sora, pro = cat.require("sora-2"), cat.require("SORA-2-PRO")
    assert sora.durations == (10, 15) and pro.durations == (10, 15, 25)
    assert not sora.hd and pro.hd and pro.hd_durations == (10, 15)
    for entry in (sora, pro):
        assert set(entry.formats) == {"chat", "task", "official"}
        assert entry.max_images == 3
        assert entry.storyboard and entry.remix and entry.characters
        assert not entry.to_confirm
        assert {o: s.aspect_ratio for o, s in entry.orientations.items()} == {
            "portrait": "9:16",
            "landscape": "16:9",
        }
    # Today's COST_TABLE default: 10=1,15=2,25=4,hd=2,sora-2=1,sora-2-pro=3
    assert [cat.cost_of(req(duration=d)) for d in (10, 15)] == [1, 2]
    assert [cat.cost_of(req(model="sora-2-pro", duration=d)) for d in (10, 15, 25)] == [3, 6, 12]
    assert cat.cost_of(req(model="sora-2-pro", duration=15, hd=True)) == 12
    assert cat.cost_of(req(model="sora-2-pro", duration=25, hd=True)) == 12  # HD moot at 25 s
    assert not pro.effective_hd(req(model="sora-2-pro", duration=25, hd=True))
    assert pro.size(req(model="sora-2-pro", hd=True)) == "1024x1792"
    assert pro.size(req(model="sora-2-pro", orientation="landscape")) == "1280x720"


def test_shipped_defaults_have_a_veo_3_family_the_relay_must_confirm() -> None:
    cat = shipped_catalogue()
    for name in ("veo3", "veo3-fast"):
        veo = cat.require(name)
        assert veo.formats == ("task",)
        assert veo.durations == (8,) and veo.first_duration == 8
        assert veo.to_confirm and veo.max_images == 1
        assert not (veo.hd or veo.storyboard or veo.remix or veo.characters)
        assert veo.aspect_ratio("landscape") == "16:9" and veo.aspect_ratio("portrait") == "9:16"
        assert veo.cost_of(req(model=name, duration=8)) > 0
    assert [e.name for e in cat.supporting("official")] == ["sora-2", "sora-2-pro"]
    assert [e.name for e in cat.supporting("hd")] == ["sora-2-pro"]
    assert cat.durations() == [8, 10, 15, 25]


def test_labels_are_localized_with_english_fallback() -> None:
    fast = shipped_catalogue().require("veo3-fast")
    assert fast.label_for("en-US") == "Veo 3 Fast"
    assert fast.label_for("zh-CN") == "Veo 3 快速版"
    assert fast.label_for("fr") == "Veo 3 Fast"
    assert fast.label_for(None) == "Veo 3 Fast"


# --- Rules: one sentence naming what the model supports ---------------------------------


@pytest.mark.parametrize(
    ("fields", "code", "sentence"),
    [
        (
            {"model": "veo3-fast", "duration": 10},
            "model_duration",
            "veo3-fast renders 8 s only; pick 8 s or another model.",
        ),
        (
            {"model": "sora-2", "duration": 25},
            "model_duration",
            "sora-2 renders 10 or 15 s; pick one of those or another model.",
        ),
        (
            {"model": "sora-2", "hd": True},
            "model_hd",
            "HD needs a model that offers it: sora-2-pro.",
        ),
        (
            {"model": "veo3", "duration": 8, "hd": True},
            "model_hd",
            "HD needs a model that offers it: sora-2-pro.",
        ),
        (
            {"model": "veo3", "duration": 8, "images": ("a", "b")},
            "model_images",
            "veo3 takes at most 1 reference image; remove some or pick another model.",
        ),
        (
            {"model": "veo3", "duration": 8, "storyboard": ("shot",)},
            "model_storyboard",
            "veo3 has no storyboard; pick sora-2 or sora-2-pro.",
        ),
        (
            {"model": "veo3-fast", "duration": 8, "remix_of": "task_1"},
            "model_remix",
            "veo3-fast has no remix; pick sora-2 or sora-2-pro.",
        ),
        (
            {"model": "nope", "duration": 10},
            "unknown_model",
            "There is no model 'nope' here; pick sora-2, sora-2-pro, veo3 or veo3-fast.",
        ),
    ],
)
def test_each_refusal_is_one_sentence_naming_what_the_model_supports(
    fields: dict[str, Any], code: str, sentence: str
) -> None:
    exc = refusal(shipped_catalogue(), **fields)
    assert (exc.code, exc.message) == (code, sentence)
    assert exc.params["model"] == fields["model"]


def test_todays_allowed_requests_still_pass() -> None:
    cat = shipped_catalogue()
    for fields in (
        {},
        {"duration": 15, "orientation": "landscape"},
        {"model": "sora-2-pro", "duration": 25, "hd": True},  # HD ignored at 25 s, as today
        {"model": "sora-2-pro", "duration": 15, "hd": True, "images": ("a", "b", "c")},
        {"model": "veo3-fast", "duration": 8, "images": ("a",)},
    ):
        assert cat.check(req(**fields)).name == fields.get("model", "sora-2")


def test_typical_render_time_per_duration_and_hd() -> None:
    cat = shipped_catalogue()
    assert cat.typical_seconds(req()) == 120
    assert cat.typical_seconds(req(model="sora-2-pro", duration=15, hd=True)) == 240 + 480
    assert cat.typical_seconds(req(model="sora-2-pro", duration=25, hd=True)) == 420
    assert cat.typical_seconds(req(model="veo3-fast", duration=8)) == 90


# --- An operator's file ------------------------------------------------------------------

OPERATOR_TOML = """
# A cheaper pro, and a model the relay started selling.
[models."sora-2-pro"]
cost = { 10 = 2 }

[models."kling-2"]
label = "Kling 2"
labels = { zh-CN = "可灵 2" }
formats = ["task"]
durations = [5, 10]
max_images = 1
cost = { 5 = 1, 10 = 2 }
render_seconds = { 5 = 60, 10 = 100 }
orientations.landscape = { aspect_ratio = "16:9" }
"""


def test_an_operator_toml_overrides_a_cost_field_by_field_and_adds_a_model(
    tmp_path: Path,
) -> None:
    cat = load_catalogue(write(tmp_path, "models.toml", OPERATOR_TOML))
    assert cat.names() == ["sora-2", "sora-2-pro", "veo3", "veo3-fast", "kling-2"]
    pro = cat.require("sora-2-pro")
    assert pro.cost == {10: 2, 15: 6, 25: 12}  # only 10 s changed
    assert pro.durations == (10, 15, 25) and pro.hd  # the rest is the shipped entry
    kling = cat.require("kling-2")
    assert kling.label_for("zh-CN") == "可灵 2" and kling.first_duration == 5
    assert kling.cost_of(req(model="kling-2", duration=10)) == 2
    exc = refusal(cat, model="kling-2", duration=5, orientation="portrait")
    assert exc.message == "kling-2 renders landscape only; pick it or another model."


def test_an_operator_json_file_works_the_same(tmp_path: Path) -> None:
    data = {
        "replace_defaults": True,
        "models": {
            "veo3-fast": {
                "default": True,
                "formats": ["task"],
                "durations": [8],
                "cost": {"8": 1},
                "orientations": {"landscape": {"aspect_ratio": "16:9"}},
            },
            "sora-2": {
                "formats": ["chat"],
                "chat": {"family": "sora_video2", "plain_duration": 10},
                "durations": [10],
                "cost": {"10": 1},
                "orientations": {"portrait": {"aspect_ratio": "9:16"}},
            },
        },
    }
    cat = load_catalogue(write(tmp_path, "models.json", json.dumps(data)))
    assert cat.names() == ["veo3-fast", "sora-2"]
    assert cat.default.name == "veo3-fast"
    assert cat.require("sora-2").chat.family == "sora_video2"
    assert cat.cost_of(req(model="veo3-fast", duration=8)) == 1


def test_an_operator_default_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = write(tmp_path, "m.toml", "[models.veo3]\ndefault = true\nto_confirm = false\n")
    cat = load_catalogue(path)
    assert cat.default.name == "veo3" and not cat.require("veo3").to_confirm
    assert [e.name for e in cat if e.default] == ["veo3"]


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        (
            "models.toml",
            "[models.veo3-fast]\ndurations = []\n",
            'MODELS_FILE models.toml: model "veo3-fast": durations: must not be empty',
        ),
        (
            "models.toml",
            '[models.sora-2]\ncost = { 10 = "one" }\n',
            'MODELS_FILE models.toml: model "sora-2": cost.10: Input should be a valid number, '
            "unable to parse string as a number",
        ),
        (
            "models.toml",
            "[models.new]\nformats = ['task']\ndurations = [6]\ncost = { 5 = 1 }\n"
            "orientations.portrait = { aspect_ratio = '9:16' }\n",
            'MODELS_FILE models.toml: model "new": cost: no price for 6 s',
        ),
        (
            "models.toml",
            "[models.new]\ndurations = [6]\n",
            'MODELS_FILE models.toml: model "new": formats: Field required',
        ),
        (
            "models.toml",
            "[models.sora-2]\nformats = ['telepathy']\n",
            "MODELS_FILE models.toml: model \"sora-2\": formats.0: Input should be 'chat', "
            "'task' or 'official'",
        ),
        (
            "models.toml",
            "[models.sora-2]\nhd = true\n",
            'MODELS_FILE models.toml: model "sora-2": orientations.portrait.hd_size: '
            "the official format needs an HD size when hd = true",
        ),
        (
            "models.toml",
            "[models.sora-2]\ncolour = 'blue'\n",
            'MODELS_FILE models.toml: model "sora-2": colour: Extra inputs are not permitted',
        ),
        (
            "models.toml",
            "[models.veo3]\ndefault = true\n[models.veo3-fast]\ndefault = true\n",
            'MODELS_FILE models.toml: model "veo3-fast": default: only one model may be',
        ),
        (
            "models.toml",
            "[models.sora-2\n",
            "MODELS_FILE models.toml: is not valid TOML: Expected ']' at the end of a table "
            "declaration (at line 1, column 15)",
        ),
        ("models.json", "{", "MODELS_FILE models.json: is not valid JSON: "),
        ("models.yaml", "models: {}", "MODELS_FILE models.yaml: must be a .toml or .json file"),
        (
            "models.toml",
            "replace_defaults = true\n",
            "MODELS_FILE models.toml: names no model",
        ),
        (
            "models.toml",
            "model = 1\n",
            "MODELS_FILE models.toml: unknown key 'model' (expected models and replace_defaults)",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_the_entry_and_field(
    tmp_path: Path, name: str, text: str, line: str
) -> None:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(write(tmp_path, name, text))
    message = str(info.value)
    assert message.startswith(line) and "\n" not in message


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"^MODELS_FILE gone.toml: cannot be read"):
        load_catalogue(tmp_path / "gone.toml")


# --- The setting -----------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.usefixtures("clean_env")
def test_models_file_is_checked_at_start_up_in_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "models.toml", "[models.veo3]\ndurations = []\n")
    env = write(tmp_path, ".env", f"MODELS_FILE={bad}\n")
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert str(info.value) == (
        'MODELS_FILE is invalid: models.toml: model "veo3": durations: must not be empty'
    )
    good = write(tmp_path, "good.toml", OPERATOR_TOML)
    env.write_text(f"MODELS_FILE={good}\n")
    assert "kling-2" in load_settings(env).catalogue()
    env.write_text("MODELS_FILE=\n")
    assert load_settings(env).catalogue().names() == shipped_catalogue().names()


def test_the_shipped_defaults_are_package_data() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"bot" = ["catalogue_defaults.toml"]' in text


# --- Resolving a request ------------------------------------------------------------------


def test_resolve_fills_the_models_own_duration_and_spelling_and_drops_moot_hd() -> None:
    cat = shipped_catalogue()
    veo = cat.resolve(VideoRequest.build(prompt="x", model="VEO3-fast"))
    assert (veo.model, veo.duration) == ("veo3-fast", 8)
    pro = cat.resolve(VideoRequest.build(prompt="x", model="sora-2-pro", duration=25, hd=True))
    assert not pro.hd  # the relay ignores HD at 25 s: not rendered, not priced
    kept = cat.resolve(VideoRequest.build(prompt="x", model="sora-2-pro", duration=15, hd=True))
    assert kept.hd
    plain = VideoRequest.build(prompt="x")
    assert cat.resolve(plain) == plain  # nothing to change: the same request


def test_resolve_uses_the_operators_default_model_when_none_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "m.toml", "[models.veo3]\ndefault = true\n")
    cat = load_catalogue(path)
    chosen = cat.resolve(VideoRequest.build(prompt="x"))
    assert (chosen.model, chosen.duration) == ("veo3", 8)
    named = cat.resolve(VideoRequest.build(prompt="x", model="sora-2"))
    assert (named.model, named.duration) == ("sora-2", 10)


def test_a_typed_duration_is_checked_never_replaced() -> None:
    with pytest.raises(InvalidRequest) as info:
        shipped_catalogue().resolve(VideoRequest.build(prompt="x", model="veo3", duration=10))
    assert info.value.message == "veo3 renders 8 s only; pick 8 s or another model."


# --- The sentences in both languages ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "zh"),
    [
        (
            {"model": "veo3-fast", "duration": 10},
            "veo3-fast 只能生成 8 秒的视频;请选择 8 秒或其他模型。",
        ),
        (
            {"model": "sora-2", "duration": 25},
            "sora-2 只能生成 10 或 15 秒的视频;请选择其中之一或其他模型。",
        ),
        ({"model": "sora-2", "hd": True}, "高清需要支持它的模型:sora-2-pro。"),
        (
            {"model": "veo3", "duration": 8, "images": ("a", "b")},
            "veo3 最多接受 1 张参考图;请删掉一些或选择其他模型。",
        ),
        (
            {"model": "veo3", "duration": 8, "remix_of": "t"},
            "veo3 不支持混剪;请选择 sora-2 或 sora-2-pro。",
        ),
        (
            {"model": "nope"},
            "这里没有模型“nope”;请选择 sora-2、sora-2-pro、veo3 或 veo3-fast。",
        ),
    ],
)
def test_each_model_sentence_reads_the_same_in_english_and_chinese(
    fields: dict[str, Any], zh: str
) -> None:
    from bot.ui.i18n import invalid_request_text

    exc = refusal(shipped_catalogue(), **fields)
    assert invalid_request_text(exc, "en-US") == exc.message
    assert invalid_request_text(exc, "zh-CN") == zh


def test_an_operator_models_orientation_sentence_in_chinese(tmp_path: Path) -> None:
    from bot.ui.i18n import invalid_request_text

    cat = load_catalogue(write(tmp_path, "m.toml", OPERATOR_TOML))
    exc = refusal(cat, model="kling-2", duration=5, orientation="portrait")
    assert invalid_request_text(exc, "zh-CN") == "kling-2 只支持横屏;请选择它或其他模型。"
    none = load_catalogue(write(tmp_path, "n.toml", "[models.veo3]\nmax_images = 0\n")).require(
        "veo3"
    )
    with pytest.raises(InvalidRequest) as info:
        none.check(req(model="veo3", duration=8, images=("a",)))
    assert invalid_request_text(info.value, "en") == (
        "veo3 takes no reference images; remove them or pick another model."
    )
    assert invalid_request_text(info.value, "zh-CN") == (
        "veo3 不接受参考图;请删掉它们或选择其他模型。"
    )


# --- Autocomplete ---------------------------------------------------------------------------


def test_model_choices_are_localized_filtered_and_follow_what_relays_offer() -> None:
    from bot.ui.choices import model_choices

    cat = shipped_catalogue()
    every = model_choices(cat, "", "en-US")
    assert [c.value for c in every] == ["sora-2", "sora-2-pro", "veo3", "veo3-fast"]
    assert every[3].name == "Veo 3 Fast (veo3-fast)"
    assert [c.name for c in model_choices(cat, "快速", "zh-CN")] == ["Veo 3 快速版 (veo3-fast)"]
    assert [c.value for c in model_choices(cat, "PRO", "en-US")] == ["sora-2-pro"]
    offered = model_choices(cat, "", "en-US", offered={"sora-2", "veo3"})
    assert [c.value for c in offered] == ["sora-2", "veo3"]


def test_duration_choices_follow_the_model_already_chosen() -> None:
    from bot.ui.choices import duration_choices

    cat = shipped_catalogue()
    assert [c.value for c in duration_choices(cat, "veo3-fast", "", "en")] == [8]
    assert [c.value for c in duration_choices(cat, "sora-2-pro", "", "en")] == [10, 15, 25]
    assert [c.value for c in duration_choices(cat, None, "", "en")] == [8, 10, 15, 25]
    assert [c.value for c in duration_choices(cat, "nope", "1", "en")] == [10, 15]
    assert [c.name for c in duration_choices(cat, "veo3", "", "zh-CN")] == ["8 秒"]

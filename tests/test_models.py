import pytest

from bot.catalogue import shipped_catalogue
from bot.relay.models import ImageInput, InvalidRequest, Shot, VideoRequest


def test_defaults_are_a_portrait_ten_second_sora2_video() -> None:
    req = VideoRequest.build(prompt="  a cat on a piano ")
    assert (req.prompt, req.orientation, req.duration, req.hd, req.model) == (
        "a cat on a piano",
        "portrait",
        10,
        False,
        "sora-2",
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        # The model's own rules come from the catalogue (issue 11).
        ({"hd": True}, "model_hd"),
        ({"duration": 25}, "model_duration"),
        ({"prompt": "   "}, "prompt_empty"),
        ({"prompt": "x" * 10_000}, "prompt_too_long"),
        ({"duration": 12}, "model_duration"),
        ({"duration": 0}, "invalid_duration"),
        ({"model": "sora-3"}, "unknown_model"),
    ],
)
def test_rule_breaks_are_one_sentence(fields: dict[str, object], code: str) -> None:
    base = {"prompt": "a boat"} | fields
    with pytest.raises(InvalidRequest) as info:
        shipped_catalogue().resolve(VideoRequest.build(**base))
    assert info.value.code == code
    assert info.value.message.endswith(".")
    assert "\n" not in info.value.message


def test_pro_allows_hd_and_25_seconds_but_25s_ignores_hd() -> None:
    asked = VideoRequest.build(prompt="a boat", model="sora-2-pro", hd=True, duration=25)
    req = shipped_catalogue().resolve(asked)
    assert asked.hd and not req.hd and not req.effective_hd
    assert shipped_catalogue().resolve(asked.model_copy(update={"duration": 15})).effective_hd


def test_storyboard_must_add_up_and_renders_the_relay_shape() -> None:
    shots = [Shot(duration=7.5, scene="a plane takes off"), Shot(duration=7.5, scene="it lands")]
    req = VideoRequest.build(prompt="", storyboard=shots, duration=15, model="sora-2-pro")
    assert req.full_prompt() == (
        "Shot 1:\nduration: 7.5sec\nScene: a plane takes off\n\n"
        "Shot 2:\nduration: 7.5sec\nScene: it lands"
    )
    with pytest.raises(InvalidRequest) as info:
        VideoRequest.build(prompt="", storyboard=shots, duration=10)
    assert info.value.code == "storyboard_total"


def test_images_need_one_source_and_an_image_type() -> None:
    assert (
        ImageInput(data=b"\x89PNG", content_type="image/png")
        .as_data_url()
        .startswith("data:image/png;base64,")
    )
    with pytest.raises(InvalidRequest):
        VideoRequest.build(
            prompt="x", images=[{"data": b"%PDF", "content_type": "application/pdf"}]
        )


@pytest.mark.parametrize(
    ("start", "end", "ok"), [(1, 3, True), (0, 0.5, False), (2, 6, False), (3, 1, False)]
)
def test_cameo_timestamps_span_one_to_three_seconds(start: float, end: float, ok: bool) -> None:
    fields = {"prompt": "x", "cameo": {"url": "https://x/clip.mp4", "start": start, "end": end}}
    if ok:
        assert VideoRequest.build(**fields).cameo.timestamps == f"{start:g},{end:g}"
    else:
        with pytest.raises(InvalidRequest):
            VideoRequest.build(**fields)


def test_a_character_mention_keeps_spaces_on_both_sides() -> None:
    assert VideoRequest.build(prompt="@cookie.dancer waves ").prompt == " @cookie.dancer waves"
    assert (
        VideoRequest.build(prompt=" a stage with @other.user").prompt == "a stage with @other.user "
    )
    assert VideoRequest.build(prompt="mail bob@example.com").prompt == "mail bob@example.com"

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.relay.models import InvalidRequest, Shot, VideoRequest
from bot.ui.views import (
    CUSTOM_ID_LIMIT,
    JOB_BUTTONS,
    JobActions,
    JobButton,
    RemixModal,
    StoryboardModal,
    job_custom_id,
    parse_storyboard,
    progress_view,
    result_view,
)
from tests.ui.conftest import make_job

URL = "https://cdn.example.com/v/abc.mp4"
TWO_SHOTS = "7.5 | a plane takes off\n\n7.5 | it lands"


def _button(item: Any) -> discord.ui.Button[Any]:
    """The Button behind a view child (DynamicItems wrap one)."""
    return getattr(item, "item", item)


class RecordingActions:
    """A `JobActions` that remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def on_rerun(self, interaction: Any, job_id: int) -> None:
        self.calls.append(("rerun", job_id))

    async def on_remix(self, interaction: Any, job_id: int) -> None:
        self.calls.append(("remix", job_id))

    async def on_details(self, interaction: Any, job_id: int) -> None:
        self.calls.append(("details", job_id))

    async def on_cancel(self, interaction: Any, job_id: int) -> None:
        self.calls.append(("cancel", job_id))

    async def on_remix_submit(self, interaction: Any, job_id: int, prompt: str) -> None:
        self.calls.append(("remix_submit", job_id, prompt))

    async def on_storyboard_submit(
        self, interaction: Any, options: Any, shots: list[Shot], prompt: str
    ) -> None:
        self.calls.append(("storyboard_submit", options, shots, prompt))


class FakeResponse:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bool]] = []

    async def send_message(self, content: str, *, ephemeral: bool = False) -> None:
        self.sent.append((content, ephemeral))


def fake_interaction(actions: JobActions | None) -> Any:
    client = SimpleNamespace(job_actions=actions) if actions else SimpleNamespace()
    return SimpleNamespace(client=client, response=FakeResponse())


@pytest.mark.parametrize("action", ["rerun", "remix", "details", "cancel"])
async def test_custom_id_round_trip_and_dispatch(action: str) -> None:
    button = JobButton(action, 12345)  # type: ignore[arg-type]
    assert button.custom_id == f"job:{action}:12345"
    match = JobButton.__discord_ui_compiled_template__.fullmatch(button.custom_id)
    assert match is not None
    parsed = await JobButton.from_custom_id(None, button.item, match)  # type: ignore[arg-type]
    assert (parsed.action, parsed.job_id) == (action, 12345)

    actions = RecordingActions()
    await parsed.callback(fake_interaction(actions))
    assert actions.calls == [(action, 12345)]


async def test_custom_ids_fit_and_foreign_ids_do_not_match() -> None:
    biggest = 2**63 - 1
    assert len(job_custom_id("details", biggest)) <= CUSTOM_ID_LIMIT
    assert JobButton("details", biggest).job_id == biggest
    pattern = JobButton.__discord_ui_compiled_template__
    for other in ("job:delete:1", "job:rerun:", "job:rerun:1x", "xjob:rerun:1", "job:rerun:-1"):
        assert pattern.fullmatch(other) is None
    assert JOB_BUTTONS == (JobButton,)


async def test_missing_handler_is_a_loud_wiring_error() -> None:
    with pytest.raises(RuntimeError, match="job_actions"):
        await JobButton("rerun", 1).callback(fake_interaction(None))


async def test_result_view_buttons() -> None:
    view = result_view(make_job(status="succeeded", result_url=URL), "en")
    items = [(_button(i).label, _button(i).url, _button(i).custom_id) for i in view.children]
    assert items == [
        ("Open video", URL, None),
        ("Rerun", None, "job:rerun:42"),
        ("Remix", None, "job:remix:42"),
        ("Details", None, "job:details:42"),
    ]
    assert view.timeout is None and view.is_persistent()


async def test_result_view_omits_remix_when_private_and_bad_links() -> None:
    private = make_job(
        status="succeeded",
        result_url="https://x/" + "a" * 600,
        request=VideoRequest(prompt="p", private=True),
    )
    labels = [_button(i).label for i in result_view(private, "zh-CN").children]
    assert labels == ["重新生成", "详情"]
    failed = [_button(i).label for i in result_view(make_job(status="failed"), "en").children]
    assert failed == ["Rerun", "Details"]


async def test_progress_view_has_cancel() -> None:
    view = progress_view(make_job(), "en")
    [item] = view.children
    assert (_button(item).label, _button(item).custom_id) == ("Cancel", "job:cancel:42")
    assert view.is_persistent()


async def test_remix_modal_submits_the_new_prompt() -> None:
    modal = RemixModal(7, "zh-CN", default="old")
    assert modal.title == "混剪视频 #7" and modal.prompt.max_length == 4000
    modal.prompt._value = "  a new prompt  "
    actions = RecordingActions()
    await modal.on_submit(fake_interaction(actions))
    assert actions.calls == [("remix_submit", 7, "a new prompt")]


async def test_storyboard_modal_parses_then_hands_over() -> None:
    options = {"duration": 15, "model": "sora-2-pro"}
    modal = StoryboardModal(options, "en")
    modal.prompt._value = " noir "
    modal.shots._value = "7.5 | a plane takes off\n7.5s | it lands"
    actions = RecordingActions()
    await modal.on_submit(fake_interaction(actions))
    [(_, got_options, shots, prompt)] = actions.calls
    assert got_options is options and prompt == "noir"
    assert [(s.duration, s.scene) for s in shots] == [(7.5, "a plane takes off"), (7.5, "it lands")]


async def test_storyboard_modal_explains_a_bad_line_in_the_members_language() -> None:
    modal = StoryboardModal({}, "zh-CN")
    modal.shots._value = "7.5 | ok\nno separator here"
    actions = RecordingActions()
    interaction = fake_interaction(actions)
    await modal.on_submit(interaction)
    assert actions.calls == []
    assert interaction.response.sent == [("第 2 行需要时长和画面,例如 `7.5 | 飞机起飞`。", True)]


@pytest.mark.parametrize(
    ("text", "shots"),
    [
        (TWO_SHOTS, [(7.5, "a plane takes off"), (7.5, "it lands")]),
        ("  3s|a | b  ", [(3.0, "a | b")]),
        ("2,5 秒 ｜ 飞机起飞", [(2.5, "飞机起飞")]),
        ("4 sec | x\n6 seconds | y", [(4.0, "x"), (6.0, "y")]),
    ],
)  # fmt: skip
def test_parse_storyboard(text: str, shots: list[tuple[float, str]]) -> None:
    assert [(s.duration, s.scene) for s in parse_storyboard(text)] == shots


@pytest.mark.parametrize(
    ("text", "code", "params"),
    [
        ("", "storyboard_empty", {}),
        ("\n  \n", "storyboard_empty", {}),
        ("a plane takes off", "storyboard_line", {"line": 1}),
        ("1 | a\nabc | b", "storyboard_duration", {"line": 2}),
        ("0 | a", "storyboard_duration", {"line": 1}),
        ("-2 | a", "storyboard_duration", {"line": 1}),
        ("nan | a", "storyboard_duration", {"line": 1}),
        ("inf | a", "storyboard_duration", {"line": 1}),
        ("3 |   ", "storyboard_scene", {"line": 1, "max": 1000}),
        ("3 | " + "x" * 1001, "storyboard_scene", {"line": 1, "max": 1000}),
        ("\n".join("1 | s" for _ in range(11)), "storyboard_too_many", {"max": 10}),
    ],
)
def test_parse_storyboard_errors(text: str, code: str, params: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_storyboard(text)
    assert info.value.code == code
    assert info.value.params == params
    assert info.value.message.endswith(".") and "{" not in info.value.message

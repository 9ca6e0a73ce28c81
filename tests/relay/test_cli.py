"""`python -m bot generate/check` as a real subprocess against the fake relay."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from bot.logs import RedactingFilter, setup_logging

from .conftest import KEY

ROOT = Path(__file__).resolve().parents[2]


async def run_cli(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "DISCORD_"))}
    full.update({"PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", **env})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_path,
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def relay_env(relay, fmt: str = "task", key: str = KEY) -> dict[str, str]:
    return {"RELAY_BASE_URL": relay.url, "RELAY_API_KEY": key, "RELAY_FORMAT": fmt}


@pytest.fixture(autouse=True)
def quick_polls(relay):
    relay.behaviour.retry_after_hint = 0  # the relay asks to be polled soon: no real waiting
    relay.behaviour.render_polls = 1


async def test_generate_prints_the_link_for_each_format(relay, tmp_path):
    formats = ("task", "official", "chat")
    runs = await asyncio.gather(
        *(
            run_cli(
                tmp_path,
                {**relay_env(relay, fmt), "LOG_LEVEL": "DEBUG"},
                "generate",
                "--landscape",
                f"a cat on a piano, {fmt}",
            )
            for fmt in formats
        )
    )
    for fmt, (code, out, err) in zip(formats, runs, strict=True):
        assert code == 0, err
        (job,) = [job for job in relay.jobs.values() if job.prompt.endswith(fmt)]
        assert job.kind == fmt
        assert out.strip().splitlines()[-1] == relay.video_url(job.id)
        assert "submitted" in err and "Traceback" not in err
        assert KEY not in out + err
        assert relay.submits_for(f"a cat on a piano, {fmt}") == 1


async def test_generate_format_flag_and_image_file(relay, tmp_path):
    image = tmp_path / "ref.png"
    image.write_bytes(b"\x89PNG fake")
    code, _out, err = await run_cli(
        tmp_path,
        relay_env(relay, "task"),
        "generate",
        "--format",
        "official",
        "--image",
        str(image),
        "a dog",
    )
    assert code == 0, err
    assert relay.requests_to("official_submit")[0].files["input_reference"]["size"] == 9


async def test_relay_failure_is_one_sentence_and_nonzero(relay, tmp_path):
    relay.behaviour.outcome = "policy"
    code, out, err = await run_cli(tmp_path, relay_env(relay), "generate", "a cat")
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert "content policy" in last and "Traceback" not in err
    assert out.strip() == ""


async def test_bad_key_is_one_sentence(relay, tmp_path):
    code, _out, err = await run_cli(
        tmp_path, relay_env(relay, key="sk-bad-key-123456"), "generate", "a cat"
    )
    assert code == 1
    assert "key was rejected" in err and "Traceback" not in err
    assert "sk-bad-key-123456" not in err


async def test_bad_options_exit_2_with_the_request_sentence(relay, tmp_path):
    code, _out, err = await run_cli(tmp_path, relay_env(relay), "generate", "--hd", "a cat")
    assert code == 2
    assert err.strip() == "HD needs a model that offers it: sora-2-pro."
    code, _, err = await run_cli(tmp_path, relay_env(relay), "generate", "--duration", "7", "x")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert relay.jobs == {}


async def test_missing_setting_exits_2(tmp_path):
    code, _out, err = await run_cli(tmp_path, {}, "check")
    assert code == 2
    assert err.strip() == "RELAY_BASE_URL is not set (see .env.example)"


async def test_check_lists_models(relay, tmp_path):
    code, out, err = await run_cli(tmp_path, relay_env(relay), "check")
    assert code == 0, err
    assert "key: accepted" in out and "models: 5" in out
    code, out, err = await run_cli(tmp_path, relay_env(relay, key="nope-nope-nope"), "check")
    assert code == 1 and "rejected" in err


async def test_check_names_the_catalogue_models_each_relay_offers(relay, tmp_path):
    relay.behaviour.models = ("sora-2", "veo3-fast", "gpt-4o-mini")
    code, out, err = await run_cli(tmp_path, relay_env(relay), "check")
    assert code == 0, err
    assert "offers: sora-2, veo3-fast\n" in out
    assert "not in the catalogue: 1 (gpt-4o-mini)" in out
    assert KEY not in out + err


async def test_check_says_a_relay_without_a_model_list_may_carry_its_formats_models(
    relay, tmp_path
):
    relay.behaviour.models_answer = "absent"
    code, out, err = await run_cli(tmp_path, relay_env(relay, fmt="chat"), "check")
    assert code == 1 and err.strip()
    assert "offers: unknown, no model list; may carry sora-2, sora-2-pro" in out
    assert "veo3" not in out  # the chat format can't carry Veo


def test_redacting_filter_hides_keys_in_messages_args_and_tracebacks():
    stream = io.StringIO()
    handler = setup_logging("DEBUG", [KEY, "discord.token.value"], stream=stream)
    try:
        log = logging.getLogger("bot.test")
        log.info("key %s and token %s", KEY, "discord.token.value")
        log.warning("masked middle %s", KEY[3:-3])
        try:
            raise RuntimeError(f"boom {KEY}")
        except RuntimeError:
            log.exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert KEY not in text and "discord.token.value" not in text and KEY[3:-3] not in text
    assert text.count("[redacted]") >= 4 and "RuntimeError" in text


def test_redacting_filter_with_no_secrets_passes_records():
    record = logging.LogRecord("x", logging.INFO, "f", 1, "hello %s", ("you",), None)
    assert RedactingFilter([]).filter(record) and record.getMessage() == "hello you"


@pytest.mark.parametrize(
    ("fmt", "link"),
    [("task", "url"), ("chat", "url"), ("official", "url"), ("official", "none")],
)
async def test_generate_output_saves_the_file_and_prints_its_path(relay, tmp_path, fmt, link):
    relay.behaviour.official_link = link
    relay.behaviour.video_bytes = 70_000
    target = tmp_path / "out" / f"{fmt}-{link}.mp4"
    target.parent.mkdir()
    code, out, err = await run_cli(
        tmp_path, relay_env(relay, fmt), "generate", "--output", str(target), "a kite"
    )
    assert code == 0, err
    assert out.strip().splitlines()[-1] == str(target)
    data = target.read_bytes()
    assert len(data) == 70_000 and data[4:8] == b"ftyp"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temp left
    assert KEY not in out + err and relay.submits_for("a kite") == 1
    if link == "none":
        (content,) = relay.requests_to("content")
        assert content.headers["Authorization"] == "<present>"
    else:
        assert not relay.requests_to("content") and relay.requests_to("files")


async def test_a_linkless_video_without_output_is_saved_beside_and_named(relay, tmp_path):
    relay.behaviour.official_link = "none"
    code, out, err = await run_cli(tmp_path, relay_env(relay, "official"), "generate", "a moth")
    assert code == 0, err
    (job,) = relay.jobs.values()
    name = f"sora-{job.id}.mp4"
    assert out.strip().splitlines()[-1] == name
    assert (tmp_path / name).stat().st_size == relay.behaviour.video_bytes
    assert "no link" in err


async def test_an_output_folder_that_does_not_exist_spends_nothing(relay, tmp_path):
    missing = tmp_path / "nowhere" / "v.mp4"
    code, _out, err = await run_cli(
        tmp_path, relay_env(relay), "generate", "--output", str(missing), "a cat"
    )
    assert code == 2 and "does not exist" in err
    assert relay.jobs == {}


async def test_a_file_that_cannot_be_fetched_leaves_no_partial_file(relay, tmp_path):
    relay.behaviour.official_link = "none"
    relay.fail_next("content", status=503, times=10)
    target = tmp_path / "v.mp4"
    code, out, err = await run_cli(
        tmp_path, relay_env(relay, "official"), "generate", "-o", str(target), "a wasp"
    )
    assert code == 1 and "Traceback" not in err and out.strip() == ""
    (job,) = relay.jobs.values()
    assert f"Video {job.id} is finished but could not be downloaded" in err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


HTML_BODY = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


async def test_a_failure_is_only_the_sentence_unless_verbose(relay, tmp_path):
    """The relay states an upstream error in JSON: one sentence, nothing raw; `--verbose`
    adds the relay's words (status, request id, text) before it, never the key."""
    relay.fail_next(
        "task_submit",
        status=200,
        body=(
            '{"error":{"message":"upstream error for sk-test-0123456789abcdef: <b>boom</b>",'
            '"type":"server_error","code":"do_request_failed"}}'
        ),
    )
    code, out, err = await run_cli(tmp_path, relay_env(relay), "generate", "a cat")
    assert code == 1 and out.strip() == ""
    assert err.strip() == "The video service is unreachable right now; try again in a few minutes."
    relay.fail_next(
        "task_submit",
        status=200,
        body=json.dumps(
            {"error": {"message": f"upstream error for {KEY}: <b>boom</b>", "type": "server_error"}}
        ),
    )
    code, _out, err = await run_cli(tmp_path, relay_env(relay), "generate", "--verbose", "a cat")
    assert code == 1
    *said, last = err.strip().splitlines()
    assert last == "The video service is unreachable right now; try again in a few minutes."
    assert any("relay_unavailable" in line and "<b>boom</b>" in line for line in said), err
    assert KEY not in err and "[redacted]" in err


async def test_an_html_page_is_detail_for_verbose_only(relay, tmp_path):
    relay.fail_next("task_submit", status=502, body=HTML_BODY, content_type="text/html")
    code, _out, err = await run_cli(tmp_path, relay_env(relay), "generate", "a cat")
    assert code == 1
    assert "<" not in err and "502" not in err and len(err.strip().splitlines()) == 1
    relay.fail_next("task_submit", status=502, body=HTML_BODY, content_type="text/html")
    code, _out, err = await run_cli(tmp_path, relay_env(relay), "generate", "--verbose", "a cat")
    assert code == 1 and "HTTP 502" in err and "502 Bad Gateway" in err


async def test_check_verbose_shows_the_relays_words(relay, tmp_path):
    env = relay_env(relay, key="sk-wrong-key-000111")
    code, _out, err = await run_cli(tmp_path, env, "check")
    assert code == 1 and "无效的令牌" not in err and "rejected" in err
    code, _out, err = await run_cli(tmp_path, env, "check", "--verbose")
    assert code == 1 and "无效的令牌" in err and "relay_auth" in err
    assert "sk-wrong-key-000111" not in err


async def test_generate_follows_the_models_file_and_a_bad_one_exits_2(relay, tmp_path):
    """The CLI reads the same catalogue as the bot: an operator's model renders with its
    own default duration; a broken file stops it with one line naming model and field."""
    good = tmp_path / "models.toml"
    good.write_text(
        '[models.kling-2]\nformats = ["task"]\ndurations = [5]\ncost = { 5 = 1 }\n'
        'orientations.portrait = { aspect_ratio = "9:16" }\n'
    )
    env = {**relay_env(relay), "MODELS_FILE": str(good)}
    code, out, _err = await run_cli(tmp_path, env, "generate", "--model", "kling-2", "a cat")
    assert code == 0 and out.strip().startswith("http")
    body = relay.requests_to("task_submit")[0].json
    assert (body["model"], body["duration"]) == ("kling-2", "5")
    code, _, err = await run_cli(tmp_path, env, "generate", "--model", "veo3", "--hd", "x")
    assert code == 2 and err.strip() == "HD needs a model that offers it: sora-2-pro."
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.veo3]\ndurations = []\n")
    code, _, err = await run_cli(tmp_path, {**env, "MODELS_FILE": str(bad)}, "check")
    assert code == 2
    assert err.strip() == (
        'MODELS_FILE is invalid: bad.toml: model "veo3": durations: must not be empty'
    )
    assert len(relay.requests_to("task_submit")) == 1

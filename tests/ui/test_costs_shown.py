"""Where a member sees what a video costs: the job message, /jobs show, /quota (point 9)."""

from __future__ import annotations

from datetime import datetime

from bot.jobs.costs import CostTable
from bot.relay.models import VideoRequest
from bot.ui.embeds import job_embed, quota_embed
from tests.ui.conftest import make_job
from tests.ui.test_embeds import Quota

TABLE = CostTable()  # 10=1,15=2,25=4,hd=2, sora-2-pro ×3
PRO_HD = VideoRequest.build(prompt="a kite", duration=15, hd=True, model="sora-2-pro")


def fields(embed) -> dict[str, str]:
    return {f.name or "": f.value or "" for f in embed.fields}


def test_the_job_message_explains_a_pro_price(now: datetime) -> None:
    job = make_job(request=PRO_HD, cost=12, status="running", started_at=now)
    shown = fields(job_embed(job, locale="en", now=now, costs=TABLE))
    assert shown["Cost"] == "15 s = 2 units × HD 2 × 3 (sora-2-pro) = 12 units"
    zh = fields(job_embed(job, locale="zh-CN", now=now, costs=TABLE))
    assert zh["花费"] == "15 秒 = 2 额度 × 高清 2 × 3(sora-2-pro)= 12 额度"


def test_jobs_show_explains_the_factor_and_plain_jobs_stay_plain(now: datetime) -> None:
    pro = make_job(request=VideoRequest.build(prompt="x", model="sora-2-pro"), cost=3)
    detail = fields(job_embed(pro, locale="en", now=now, details=True, costs=TABLE))
    assert detail["Cost"] == "10 s = 1 unit × 3 (sora-2-pro) = 3 units"
    plain = make_job(cost=1)
    assert fields(job_embed(plain, locale="en", now=now, costs=TABLE))["Cost"] == "1 unit"
    # Priced under an older table: the explanation would not add up, so only the units.
    old = make_job(request=PRO_HD, cost=4, status="succeeded")
    assert fields(job_embed(old, locale="en", now=now, costs=TABLE))["Cost"] == "4 units"


def test_quota_lists_the_prices(now: datetime) -> None:
    table = CostTable.parse("10=1,15=2,25=5,hd=1.5,sora-2-pro=2.5")
    shown = fields(quota_embed(Quota(), "en", now, prices=table))
    assert shown["Prices"] == (
        "10 s: 1 · 15 s: 2 · 25 s: 5 units\nHD ×1.5 · sora-2 ×1 · sora-2-pro ×2.5"
    )
    zh = fields(quota_embed(Quota(), "zh-CN", now, prices=table))
    assert zh["价格"].startswith("10 秒: 1 · 15 秒: 2 · 25 秒: 5 额度\n高清 ×1.5")

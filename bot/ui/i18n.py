"""Every sentence a member sees, in English and Simplified Chinese.

Keys are stable (`error.<relay code>`, `invalid.<InvalidRequest code>`, ...), so the store can
keep codes and the UI picks the member's language at render time. Both languages must have
the same keys and the same `{placeholders}`; a test enforces it.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Mapping
from typing import Any, Final, Literal

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation, TranslationContextTypes, locale_str

from bot.relay.models import MAX_IMAGES, MAX_PROMPT_CHARS, InvalidRequest

log = logging.getLogger(__name__)

Lang = Literal["en", "zh-CN"]
DEFAULT_LANG: Final[Lang] = "en"

EN: Final[dict[str, str]] = {
    # Relay errors: one per code in bot/relay/errors.py (plus content-policy stages).
    "error.relay_error": "The video service failed; please try again later.",
    "error.content_policy": "The video was refused by the content policy; "
    "change the prompt or images and try again.",
    "error.content_policy.prompt": "The prompt was refused by the content policy; "
    "reword it and try again.",
    "error.content_policy.image": "A reference image was refused by the content policy "
    "(no real people); use another image.",
    "error.content_policy.output": "The finished video was refused by the content policy; "
    "change the prompt and try again.",
    "error.relay_auth": "The bot's video service key was rejected; ask a server admin to check it.",
    "error.relay_credit": "The bot's video service account is out of credit; ask a server admin.",
    "error.rate_limited": "The video service is busy; try again in a minute.",
    "error.relay_unavailable": "The video service is unreachable right now; "
    "try again in a few minutes.",
    "error.model_unavailable": "That model is not available on the video service right now; "
    "try another.",
    "error.model_not_offered": "No video service offers this model right now; pick another model.",
    "error.bad_request": "The video service rejected the request's options; try different options.",
    "error.invalid_response": "The video service sent an unreadable answer; please try again.",
    "error.task_not_found": "The video service lost track of this video; please try again.",
    "error.generation_failed": "The video failed to render; please try again.",
    "error.timed_out": "The video took too long to render and was abandoned; please try again.",
    "error.images_gone": "The reference images were no longer kept, so nothing was sent; "
    "start a new /video with the images attached.",
    "error.stream_interrupted": "The connection to the video service dropped mid-render; "
    "please try again.",
    # Request rule breaks: one per InvalidRequest code in bot/relay/models.py.
    # A model's own rules (ModelEntry.check in bot/catalogue.py); `_one`/`_none` variants
    # are picked by `invalid_request_text` from the list or number they carry.
    "invalid.model_duration": "{model} renders {durations} s; pick one of those or another model.",
    "invalid.model_duration_one": "{model} renders {durations} s only; "
    "pick {durations} s or another model.",
    "invalid.model_orientation": "{model} renders {orientations} only; pick it or another model.",
    "invalid.model_hd": "HD needs a model that offers it: {models}.",
    "invalid.model_hd_none": "{model} has no HD; turn HD off.",
    "invalid.model_images": "{model} takes at most {max} reference images; "
    "remove some or pick another model.",
    "invalid.model_images_one": "{model} takes at most 1 reference image; "
    "remove some or pick another model.",
    "invalid.model_images_none": "{model} takes no reference images; "
    "remove them or pick another model.",
    "invalid.model_storyboard": "{model} has no storyboard; pick {models}.",
    "invalid.model_storyboard_none": "{model} has no storyboard.",
    "invalid.model_remix": "{model} has no remix; pick {models}.",
    "invalid.model_remix_none": "{model} has no remix.",
    "invalid.model_characters": "{model} has no characters; pick {models}.",
    "invalid.model_characters_none": "{model} has no characters.",
    "invalid.unknown_model": "There is no model '{model}' here; pick {models}.",
    "invalid.prompt_empty": "Describe the video you want in the prompt.",
    "invalid.prompt_too_long": "Your prompt is {chars} characters; keep it under {max}.",
    "invalid.too_many_images": "Attach at most {max} reference images.",
    "invalid.storyboard_total": "The shots add up to {total} s but the video is {duration} s; "
    "make them match.",
    "invalid.remix_options": "A remix takes only a new prompt; drop the images or storyboard.",
    "invalid.timestamps_order": "The end time must come after the start time (in seconds).",
    "invalid.timestamps_span": "The character clip must span 1 to 3 seconds; adjust start or end.",
    "invalid.image_type": "Reference images must be PNG, JPEG, WebP or GIF files.",
    "invalid.image_url": "Image links must start with http:// or https://.",
    "invalid.image_source": "Each image needs either a link or a file.",
    "invalid.generic": "Check the options: {detail}",
    # Storyboard modal parsing (bot/ui/views.py).
    "invalid.storyboard_empty": "Add at least one shot, one per line, "
    "like `7.5 | a plane takes off`.",
    "invalid.storyboard_line": "Line {line} needs a duration and a scene, "
    "like `7.5 | a plane takes off`.",
    "invalid.storyboard_duration": "Line {line} needs a duration in seconds greater than 0, "
    "like `7.5`.",
    "invalid.storyboard_scene": "Line {line} needs a scene of 1 to {max} characters.",
    "invalid.storyboard_too_many": "Use at most {max} shots.",
    # Attachments.
    "attachment.not_an_image": "{name} is not an image; attach a PNG, JPEG, WebP or GIF.",
    "attachment.image_too_large": "{name} is larger than {limit_mb} MB; attach a smaller image.",
    "attachment.image_undecodable": "{name} could not be read as an image; "
    "re-save it and try again.",
    "attachment.image_unreachable": "I couldn't download {name} from Discord; attach it again.",
    # Quotas.
    "quota.title": "Video units",
    "quota.yours": "You",
    "quota.server": "This server",
    "quota.line": "{used} / {limit} units used · resets {resets}",
    "quota.line_unlimited": "{used} units used · no limit",
    "quota.guild_exhausted": "This server has used {used} of its {limit} units this month; "
    "this video needs {cost}. It resets {resets}.",
    "quota.guild_off": "Video generation is turned off on this server (its monthly quota is 0).",
    "quota.user_exhausted": "You have used {used} of your {limit} daily units; "
    "this video needs {cost}. Your quota resets {resets}.",
    "quota.user_off": "Your daily quota here is 0 units, so you cannot make videos.",
    "quota.exempt": "No limit for you",
    "quota.prices": "Prices",
    "quota.price_durations": "{durations} units",
    "quota.price_factors": "HD ×{hd} · {models}",
    # How a job's cost was reached (the model factor comes from COST_TABLE).
    "cost.explain": "{duration} s = {base} units{hd} × {factor} ({model}) = {units} units",
    "cost.hd": " × HD {factor}",
    # A model's own price (the catalogue), when HD changed it.
    "cost.explain_model": "{duration} s {model} = {base} units{hd} = {units} units",
    # /quota: one line per model of the catalogue.
    "quota.price_model": "{model}: {durations} units{hd}",
    "quota.price_model_hd": " · HD ×{hd}",
    # Character aliases (AliasError codes in bot/store/characters.py).
    "alias.alias_unknown": "Unknown character {names}; see /character list.",
    "alias.alias_invalid": "A character alias is 2 to 32 letters, digits, _ or -, "
    "with no spaces or dots.",
    "alias.alias_taken": "{alias} is already taken on this server; "
    "pick another alias or delete it first.",
    # Job states and relay phases.
    "state.queued": "Queued — #{position} in line",
    "state.queued_unknown": "Queued",
    "state.submitting": "Starting",
    "state.succeeded": "Done",
    "state.failed": "Failed",
    "state.cancelled": "Cancelled",
    "state.timed_out": "Timed out",
    "state.interrupted": "Interrupted by a restart — your units were refunded",
    "phase.queued": "Waiting for the video service",
    "phase.rendering": "Rendering",
    "phase.checking": "Checking content",
    "phase.finishing": "Finishing",
    "phase.no_answer": "The video service is not answering; still waiting",
    # Buttons.
    "button.open": "Open video",
    "button.rerun": "Rerun",
    "button.remix": "Remix",
    "button.details": "Details",
    "button.cancel": "Cancel",
    # Embed fields and values.
    "field.prompt": "Prompt",
    "field.orientation": "Orientation",
    "field.duration": "Duration",
    "field.model": "Model",
    "field.hd": "HD",
    "field.images": "Images",
    "field.storyboard": "Storyboard",
    "field.progress": "Progress",
    "field.phase": "Phase",
    "field.elapsed": "Elapsed",
    "field.eta": "ETA",
    "field.cost": "Cost",
    "field.job": "Job",
    "field.error": "What happened",
    "field.relay": "Relay task",
    "field.created": "Created",
    "field.finished": "Finished",
    "value.portrait": "Portrait",
    "value.landscape": "Landscape",
    "value.seconds": "{n} s",
    "value.yes": "Yes",
    "value.no": "No",
    "value.units": "{units} units",
    "value.eta_unknown": "Any moment now",
    "embed.footer": "Job #{id} · {cost} units",
    "embed.error_title": "Something's not right",
    "embed.more": "…and {count} more",
    # Refunds.
    "refund.refunded": "Your units were refunded ({units} units).",
    "refund.policy_charged": "No refund: content-policy refusals are charged.",
    # Lists.
    "list.jobs_title": "Your recent videos",
    "list.jobs_empty": "No videos yet. Try /video.",
    "list.characters_title": "Characters",
    "list.characters_empty": "No characters yet.",
    "list.character_line": "{alias} → {username} · created by {creator}",
    "relay.title": "Video services",
    "relay.ok": "OK",
    "relay.error": "Error: {error}",
    "relay.latency": "{ms} ms",
    "relay.offers": "Offers: {models}",
    "relay.offers_unlisted": "Offers: unknown (no model list); may carry {models}",
    "relay.unknown_models": "Listed, not in the catalogue: {models}",
    "relay.none": "No video services are configured.",
    "relay.low_credit": "⚠️ The relay says its credit is low ({quota} left).",
    "relay.low_credit_unknown": "⚠️ The relay says its credit is low.",
    "relay.paused": "⏸️ Skipped after repeated failures ({state}).",
    "relay.operator_low_credit": "⚠️ Relay **{relay}** says its account credit is low "
    "({quota} left). Top it up before members' videos start failing.",
    # Modals.
    "modal.remix_title": "Remix video #{id}",
    "modal.remix_label": "New prompt",
    "modal.remix_placeholder": "Describe what should change",
    "modal.storyboard_title": "Storyboard",
    "modal.storyboard_prompt_label": "Overall prompt (optional)",
    "modal.storyboard_prompt_placeholder": "Style, setting, characters shared by all shots",
    "modal.storyboard_shots_label": "Shots: seconds | scene, one per line",
    "modal.storyboard_shots_placeholder": "7.5 | a plane takes off\n7.5 | the plane lands",
    # Job actions refused by the engine (JobError codes in bot/jobs/engine.py).
    "job.job_not_found": "Job #{id} not found.",
    "job.other_server": "Job #{id} belongs to another server; use it there.",
    "job.cancel_not_yours": "You can't cancel someone else's job.",
    "job.already_finished": "Job #{id} has already finished.",
    "job.cancel_pending": "Job #{id}: cancel asked; it stops as soon as the bot reaches it.",
    "job.remix_not_finished": "Job #{id} hasn't finished yet; remix it once it's done.",
    "job.remix_private": "Job #{id} is private and can't be remixed.",
    "job.images_gone": "Job #{id}'s reference images are no longer kept; "
    "start a new /video with the images attached.",
    "job.cancelled_ok": "Job #{id} was cancelled.",
    # Queue and characters (cogs).
    "queue.summary": "{running} rendering, {waiting} waiting.",
    "queue.rendering": "Job #{id}: rendering, {percent}%.",
    "queue.waiting": "Job #{id}: #{position} in line, about {wait} to wait.",
    "character.created": "Saved: type @{alias} in a prompt to use @{username}.",
    "character.deleted": "Removed the alias @{alias}.",
    # The live progress message (bot/live_messages.py).
    "live.ready_ping": "{user}, your video #{id} is ready.",
    "live.moved_below": "Job #{id} continues in a new message below.",
    "live.too_big_no_link": "The video is too large to attach here and this video service "
    "gives no link to it; ask the bot's operator for the file.",
    "live.attaching": "Finished; attaching the video file…",
    "live.fetch_failed_no_link": "The video is finished but could not be fetched from the "
    "video service, which gives no link to it; ask the bot's operator for the file.",
    # Member and server defaults (/settings, bot/jobs/defaults.py).
    "settings.title": "Video defaults",
    "settings.yours": "Yours in this server",
    "settings.server": "This server's",
    "settings.allowed": "Models allowed here",
    "settings.all_models": "All: {models}",
    "settings.effective": "A /video with no options renders",
    "settings.not_set": "Not set",
    "settings.footer": "Options you type in /video always win; change these with /settings set.",
    "settings.saved": "Saved: your defaults in this server.",
    "settings.cleared": "Cleared: your defaults in this server.",
    "settings.server_saved": "Saved: this server's defaults.",
    "settings.server_cleared": "Cleared: this server's defaults.",
    "settings.models_saved": "Members here can use {models}.",
    "settings.models_all": "Members here can use every model.",
    "settings.last_model": "At least one model must stay allowed; "
    "use /settings-admin models reset to allow them all.",
    "settings.unknown_model": "{model} is not a model this bot offers; pick one of {models}.",
    "settings.not_allowed": "{model} is not allowed on this server; "
    "the models allowed here are {models}.",
    "settings.none_allowed": "No video model is allowed on this server right now; "
    "ask an admin to run /settings-admin models reset.",
    "settings.skipped.unknown": "{whose} default model {value} is no longer offered, "
    "so this video uses {used}.",
    "settings.skipped.not_allowed": "{whose} default model {value} is not allowed here, "
    "so this video uses {used}.",
    "settings.skipped.unsupported": "{whose} default {field} ({value}) doesn't fit {model}, "
    "so this video uses {used}.",
    "settings.skipped.unsupported_hd": "{whose} default HD doesn't fit {model}, "
    "so this video is not in HD.",
    "settings.skipped.unsupported_model": "{whose} default model {value} can't render "
    "what this video asks for, so it uses {used}.",
    "settings.whose.member": "Your",
    "settings.whose.server": "This server's",
    "settings.field.model": "model",
    "settings.field.orientation": "orientation",
    "settings.field.duration": "duration",
    "settings.field.hd": "HD",
    "settings.field.private": "private",
    "settings.quota_line": "{summary} · change with /settings",
    "field.private": "Private",
    "field.defaults": "Your defaults",
    # Generic.
    "generic.not_allowed": "You don't have permission to do that.",
    "generic.guild_only": "This works only in a server, not in direct messages.",
    "generic.internal_error": "Something went wrong on our side; it has been logged as {ref}.",
    "generic.internal": "Something went wrong on our side; it has been logged as job #{id}.",
    "generic.not_owner": "You can't cancel someone else's job.",
    "generic.not_found": "Job #{id} not found.",
}

ZH: Final[dict[str, str]] = {
    "error.relay_error": "视频服务出错了,请稍后再试。",
    "error.content_policy": "视频被内容政策拒绝;请修改提示词或图片后重试。",
    "error.content_policy.prompt": "提示词被内容政策拒绝;请换个说法后重试。",
    "error.content_policy.image": "参考图片被内容政策拒绝(不能包含真人);请换一张图片。",
    "error.content_policy.output": "生成的视频被内容政策拒绝;请修改提示词后重试。",
    "error.relay_auth": "机器人的视频服务密钥被拒绝;请联系服务器管理员检查。",
    "error.relay_credit": "机器人的视频服务账户余额不足;请联系服务器管理员。",
    "error.rate_limited": "视频服务繁忙;请一分钟后再试。",
    "error.relay_unavailable": "暂时无法连接视频服务;请过几分钟再试。",
    "error.model_unavailable": "视频服务暂时无法使用该模型;请换一个模型。",
    "error.model_not_offered": "目前没有视频服务提供该模型;请换一个模型。",
    "error.bad_request": "视频服务拒绝了请求的选项;请换一组选项。",
    "error.invalid_response": "视频服务返回了无法识别的内容;请重试。",
    "error.task_not_found": "视频服务找不到这个视频任务了;请重试。",
    "error.generation_failed": "视频生成失败;请重试。",
    "error.timed_out": "视频生成时间过长,已放弃;请重试。",
    "error.images_gone": "参考图片已不再保存,因此没有提交;请用 /video 重新附加图片。",
    "error.stream_interrupted": "生成途中与视频服务的连接断开了;请重试。",
    "invalid.model_duration": "{model} 只能生成 {durations} 秒的视频;请选择其中之一或其他模型。",
    "invalid.model_duration_one": "{model} 只能生成 {durations} 秒的视频;"
    "请选择 {durations} 秒或其他模型。",
    "invalid.model_orientation": "{model} 只支持{orientations};请选择它或其他模型。",
    "invalid.model_hd": "高清需要支持它的模型:{models}。",
    "invalid.model_hd_none": "{model} 不支持高清;请关闭高清。",
    "invalid.model_images": "{model} 最多接受 {max} 张参考图;请删掉一些或选择其他模型。",
    "invalid.model_images_one": "{model} 最多接受 1 张参考图;请删掉一些或选择其他模型。",
    "invalid.model_images_none": "{model} 不接受参考图;请删掉它们或选择其他模型。",
    "invalid.model_storyboard": "{model} 不支持分镜;请选择 {models}。",
    "invalid.model_storyboard_none": "{model} 不支持分镜。",
    "invalid.model_remix": "{model} 不支持混剪;请选择 {models}。",
    "invalid.model_remix_none": "{model} 不支持混剪。",
    "invalid.model_characters": "{model} 不支持角色;请选择 {models}。",
    "invalid.model_characters_none": "{model} 不支持角色。",
    "invalid.unknown_model": "这里没有模型“{model}”;请选择 {models}。",
    "invalid.prompt_empty": "请在提示词中描述你想要的视频。",
    "invalid.prompt_too_long": "你的提示词有 {chars} 个字符;请控制在 {max} 以内。",
    "invalid.too_many_images": "最多只能附加 {max} 张参考图片。",
    "invalid.storyboard_total": "分镜总时长为 {total} 秒,但视频时长为 {duration} 秒;请让两者一致。",
    "invalid.remix_options": "混剪只接受新的提示词;请去掉图片或分镜。",
    "invalid.timestamps_order": "结束时间必须晚于开始时间(以秒为单位)。",
    "invalid.timestamps_span": "角色片段必须为 1 到 3 秒;请调整开始或结束时间。",
    "invalid.image_type": "参考图片必须是 PNG、JPEG、WebP 或 GIF 文件。",
    "invalid.image_url": "图片链接必须以 http:// 或 https:// 开头。",
    "invalid.image_source": "每张图片都需要一个链接或一个文件。",
    "invalid.generic": "请检查选项:{detail}",
    "invalid.storyboard_empty": "请至少添加一个镜头,每行一个,例如 `7.5 | 飞机起飞`。",
    "invalid.storyboard_line": "第 {line} 行需要时长和画面,例如 `7.5 | 飞机起飞`。",
    "invalid.storyboard_duration": "第 {line} 行需要一个大于 0 的秒数,例如 `7.5`。",
    "invalid.storyboard_scene": "第 {line} 行的画面描述需要 1 到 {max} 个字符。",
    "invalid.storyboard_too_many": "最多使用 {max} 个镜头。",
    "attachment.not_an_image": "{name} 不是图片;请附加 PNG、JPEG、WebP 或 GIF。",
    "attachment.image_too_large": "{name} 超过 {limit_mb} MB;请附加更小的图片。",
    "attachment.image_undecodable": "无法将 {name} 识别为图片;请重新保存后再试。",
    "attachment.image_unreachable": "无法从 Discord 下载 {name};请重新附加。",
    "quota.title": "视频额度",
    "quota.yours": "你",
    "quota.server": "本服务器",
    "quota.line": "已用 {used} / {limit} 额度 · {resets}重置",
    "quota.line_unlimited": "已用 {used} 额度 · 无上限",
    "quota.guild_exhausted": "本服务器本月已用 {used} / {limit} 额度,这个视频需要 {cost};"
    "额度将于 {resets}重置。",
    "quota.guild_off": "本服务器已关闭视频生成(每月额度为 0)。",
    "quota.user_exhausted": "你今天已用 {used} / {limit} 额度,这个视频需要 {cost};"
    "额度将于 {resets}重置。",
    "quota.user_off": "你在这里的每日额度为 0,无法生成视频。",
    "quota.exempt": "你不受额度限制",
    "quota.prices": "价格",
    "quota.price_durations": "{durations} 额度",
    "quota.price_factors": "高清 ×{hd} · {models}",
    "cost.explain": "{duration} 秒 = {base} 额度{hd} × {factor}({model})= {units} 额度",
    "cost.hd": " × 高清 {factor}",
    "cost.explain_model": "{duration} 秒 {model} = {base} 额度{hd} = {units} 额度",
    "quota.price_model": "{model}:{durations} 额度{hd}",
    "quota.price_model_hd": " · 高清 ×{hd}",
    "alias.alias_unknown": "未知的角色 {names};请查看 /character list。",
    "alias.alias_invalid": "角色别名须为 2 到 32 个字母、数字、_ 或 -,不能有空格或点。",
    "alias.alias_taken": "{alias} 在本服务器已被占用;请换一个别名或先删除它。",
    "state.queued": "排队中 — 第 {position} 位",
    "state.queued_unknown": "排队中",
    "state.submitting": "正在开始",
    "state.succeeded": "完成",
    "state.failed": "失败",
    "state.cancelled": "已取消",
    "state.timed_out": "已超时",
    "state.interrupted": "因重启中断 — 你的额度已退还",
    "phase.queued": "等待视频服务",
    "phase.rendering": "生成中",
    "phase.checking": "内容审核中",
    "phase.finishing": "收尾中",
    "phase.no_answer": "视频服务暂时没有响应，仍在等待",
    "button.open": "打开视频",
    "button.rerun": "重新生成",
    "button.remix": "混剪",
    "button.details": "详情",
    "button.cancel": "取消",
    "field.prompt": "提示词",
    "field.orientation": "方向",
    "field.duration": "时长",
    "field.model": "模型",
    "field.hd": "高清",
    "field.images": "图片",
    "field.storyboard": "分镜",
    "field.progress": "进度",
    "field.phase": "阶段",
    "field.elapsed": "已用时间",
    "field.eta": "预计剩余",
    "field.cost": "花费",
    "field.job": "任务",
    "field.error": "发生了什么",
    "field.relay": "中转任务",
    "field.created": "创建时间",
    "field.finished": "完成时间",
    "value.portrait": "竖屏",
    "value.landscape": "横屏",
    "value.seconds": "{n} 秒",
    "value.yes": "是",
    "value.no": "否",
    "value.units": "{units} 额度",
    "value.eta_unknown": "马上就好",
    "embed.footer": "任务 #{id} · {cost} 额度",
    "embed.error_title": "出了点问题",
    "embed.more": "……还有 {count} 项",
    "refund.refunded": "你的 {units} 额度已退还。",
    "refund.policy_charged": "不退还:被内容政策拒绝的请求照常计费。",
    "list.jobs_title": "你最近的视频",
    "list.jobs_empty": "还没有视频。试试 /video。",
    "list.characters_title": "角色",
    "list.characters_empty": "还没有角色。",
    "list.character_line": "{alias} → {username} · 由 {creator} 创建",
    "relay.title": "视频服务",
    "relay.ok": "正常",
    "relay.error": "错误:{error}",
    "relay.latency": "{ms} 毫秒",
    "relay.offers": "提供:{models}",
    "relay.offers_unlisted": "提供:未知(没有模型列表);可能支持 {models}",
    "relay.unknown_models": "列出但不在模型目录中:{models}",
    "relay.none": "没有配置视频服务。",
    "relay.low_credit": "⚠️ 中转站提示余额不足(剩余 {quota})。",
    "relay.low_credit_unknown": "⚠️ 中转站提示余额不足。",
    "relay.paused": "⏸️ 多次失败后暂时跳过({state})。",
    "relay.operator_low_credit": "⚠️ 中转站 **{relay}** 提示账户余额不足(剩余 {quota})。"
    "请在成员的视频开始失败前充值。",
    "modal.remix_title": "混剪视频 #{id}",
    "modal.remix_label": "新的提示词",
    "modal.remix_placeholder": "描述需要改变的内容",
    "modal.storyboard_title": "分镜",
    "modal.storyboard_prompt_label": "整体提示词(可选)",
    "modal.storyboard_prompt_placeholder": "所有镜头共用的风格、场景、角色",
    "modal.storyboard_shots_label": "镜头:秒数 | 画面,每行一个",
    "modal.storyboard_shots_placeholder": "7.5 | 飞机起飞\n7.5 | 飞机降落",
    "job.job_not_found": "找不到任务 #{id}。",
    "job.other_server": "任务 #{id} 属于另一个服务器;请在那里使用。",
    "job.cancel_not_yours": "你不能取消别人的任务。",
    "job.already_finished": "任务 #{id} 已经结束了。",
    "job.cancel_pending": "任务 #{id}:已请求取消,机器人一联系上它就会停止。",
    "job.remix_not_finished": "任务 #{id} 还没完成;完成后再混剪。",
    "job.remix_private": "任务 #{id} 是私密的,不能混剪。",
    "job.images_gone": "任务 #{id} 的参考图片已不再保存;请用 /video 重新附加图片后再生成。",
    "job.cancelled_ok": "任务 #{id} 已取消。",
    "queue.summary": "{running} 个生成中,{waiting} 个排队中。",
    "queue.rendering": "任务 #{id}:生成中,{percent}%。",
    "queue.waiting": "任务 #{id}:排在第 {position} 位,大约还需等待 {wait}。",
    "character.created": "已保存:在提示词中输入 @{alias} 即可使用 @{username}。",
    "character.deleted": "已删除别名 @{alias}。",
    "live.ready_ping": "{user},你的视频 #{id} 已完成。",
    "live.moved_below": "任务 #{id} 在下方的新消息中继续。",
    "live.too_big_no_link": "视频太大,无法在这里附上,而视频服务没有提供链接;"
    "请向机器人的运营者索取文件。",
    "live.attaching": "已完成,正在附上视频文件……",
    "live.fetch_failed_no_link": "视频已完成,但无法从视频服务取回,而它没有提供链接;"
    "请向机器人的运营者索取文件。",
    "settings.title": "视频默认设置",
    "settings.yours": "你在本服务器的设置",
    "settings.server": "本服务器的设置",
    "settings.allowed": "本服务器允许的模型",
    "settings.all_models": "全部:{models}",
    "settings.effective": "不带选项的 /video 将生成",
    "settings.not_set": "未设置",
    "settings.footer": "在 /video 中填写的选项总是优先;用 /settings set 修改这些设置。",
    "settings.saved": "已保存你在本服务器的默认设置。",
    "settings.cleared": "已清除你在本服务器的默认设置。",
    "settings.server_saved": "已保存本服务器的默认设置。",
    "settings.server_cleared": "已清除本服务器的默认设置。",
    "settings.models_saved": "本服务器的成员可以使用 {models}。",
    "settings.models_all": "本服务器的成员可以使用所有模型。",
    "settings.last_model": "至少要保留一个允许的模型;"
    "用 /settings-admin models reset 允许全部模型。",
    "settings.unknown_model": "{model} 不是本机器人提供的模型;请从 {models} 中选择。",
    "settings.not_allowed": "本服务器不允许使用 {model};这里允许的模型有 {models}。",
    "settings.none_allowed": "本服务器目前不允许使用任何视频模型;"
    "请管理员运行 /settings-admin models reset。",
    "settings.skipped.unknown": "{whose}默认模型 {value} 已不再提供,本视频改用 {used}。",
    "settings.skipped.not_allowed": "{whose}默认模型 {value} 在这里不被允许,本视频改用 {used}。",
    "settings.skipped.unsupported": "{whose}默认{field}({value})不适用于 {model},"
    "本视频改用 {used}。",
    "settings.skipped.unsupported_hd": "{whose}默认高清不适用于 {model},本视频不使用高清。",
    "settings.skipped.unsupported_model": "{whose}默认模型 {value} 无法满足这个视频的要求,"
    "本视频改用 {used}。",
    "settings.whose.member": "你的",
    "settings.whose.server": "本服务器的",
    "settings.field.model": "模型",
    "settings.field.orientation": "方向",
    "settings.field.duration": "时长",
    "settings.field.hd": "高清",
    "settings.field.private": "私密",
    "settings.quota_line": "{summary} · 用 /settings 修改",
    "field.private": "私密",
    "field.defaults": "你的默认设置",
    "generic.not_allowed": "你没有权限执行此操作。",
    "generic.guild_only": "此操作只能在服务器中使用,不能在私信中使用。",
    "generic.internal_error": "我们这边出了问题;已记录为 {ref}。",
    "generic.internal": "我们这边出了问题;已记录为任务 #{id}。",
    "generic.not_owner": "你不能取消别人的任务。",
    "generic.not_found": "找不到任务 #{id}。",
}

CATALOGUE: Final[Mapping[Lang, Mapping[str, str]]] = {"en": EN, "zh-CN": ZH}


def normalize_locale(locale: str | discord.Locale | None) -> Lang:
    """Map any Discord locale to a catalogue language; only Simplified Chinese is translated."""
    if locale is None:
        return DEFAULT_LANG
    value = (locale.value if isinstance(locale, discord.Locale) else locale).lower()
    if value in {"zh", "zh-cn", "zh-hans", "zh_cn"} or value.startswith("zh-hans"):
        return "zh-CN"
    return DEFAULT_LANG


# Flat codes other layers raise (`exc.code`) resolve to a namespaced key, first match wins.
_NAMESPACES: Final = (
    "error",
    "invalid",
    "job",
    "alias",
    "attachment",
    "generic",
    "live",
    "queue",
    "character",
)
_ALIASES: Final[dict[str, str]] = {
    "unknown_alias": "alias.alias_unknown",
    "content_policy_prompt": "error.content_policy.prompt",
    "content_policy_image": "error.content_policy.image",
    "content_policy_output": "error.content_policy.output",
    "content_policy_unknown": "error.content_policy",
    "quota_guild_exhausted": "quota.guild_exhausted",
    "quota_user_exhausted": "quota.user_exhausted",
    "quota_guild": "quota.guild_exhausted",
    "quota_user": "quota.user_exhausted",
    "internal": "generic.internal",
}


def resolve_key(key: str) -> str | None:
    """The catalogue key for `key`: itself, a known alias, or `<namespace>.<key>`."""
    if key in EN:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    for namespace in _NAMESPACES:
        if f"{namespace}.{key}" in EN:
            return f"{namespace}.{key}"
    return None


class _KeepMissing(dict[str, Any]):
    """A missing placeholder stays visible instead of crashing a progress update."""

    def __missing__(self, key: str) -> str:
        log.warning("i18n: missing parameter %r", key)
        return "{" + key + "}"


def t(key: str, locale: str | discord.Locale | None, **params: Any) -> str:
    """The sentence for `key` in the member's language, falling back to English, then the key.

    `key` may be a catalogue key (`error.rate_limited`) or a bare code (`rate_limited`).
    """
    resolved = resolve_key(key)
    if resolved is None:
        log.warning("i18n: unknown key %r", key)
        return key
    lang = normalize_locale(locale)
    template = CATALOGUE[lang].get(resolved) or EN[resolved]
    text = template.format_map(_KeepMissing(params))
    return _ONE_UNIT.sub(r"\1 unit", text) if lang == "en" else text


# English plural: the catalogue says "{n} units"; one of them is "1 unit" (Chinese has no plural).
_ONE_UNIT: Final = re.compile(r"(?<![\d.,])(1) units\b")


def has_key(key: str, params: Mapping[str, Any] | None = None) -> bool:
    """Whether `t(key, ...)` has a sentence, and (given `params`) all its placeholders."""
    resolved = resolve_key(key)
    if resolved is None:
        return False
    return params is None or placeholders(EN[resolved]) <= params.keys()


def placeholders(template: str) -> frozenset[str]:
    """The `{names}` a template uses; the parity test compares these across languages."""
    return frozenset(
        field.split(".")[0].split("[")[0]
        for _, field, _, _ in string.Formatter().parse(template)
        if field
    )


# --- Turning error codes into sentences -------------------------------------------------

_PROMPT_TOO_LONG = re.compile(r"is ([\d,]+) characters; keep it under ([\d,]+)")
_STORYBOARD_TOTAL = re.compile(r"add up to (\S+) s but the video is (\d+) s")


def _invalid_params(exc: InvalidRequest) -> dict[str, Any]:
    """Recover the numbers an InvalidRequest sentence carries, so zh can show them too.

    `InvalidRequest` holds only a code and an English sentence; a `params` attribute wins
    when present (bot/ui's own errors set it).
    """
    params: dict[str, Any] = dict(getattr(exc, "params", None) or {})
    if exc.code == "prompt_too_long" and not params:
        match = _PROMPT_TOO_LONG.search(exc.message)
        params = {"chars": match[1], "max": match[2]} if match else {}
        params.setdefault("max", f"{MAX_PROMPT_CHARS:,}")
    elif exc.code == "too_many_images":
        params.setdefault("max", MAX_IMAGES)
    elif exc.code == "storyboard_total" and not params:
        match = _STORYBOARD_TOTAL.search(exc.message)
        params = {"total": match[1], "duration": match[2]} if match else {}
    return params


_ORIENTATION_WORDS: Final[Mapping[Lang, Mapping[str, str]]] = {
    "en": {},
    "zh-CN": {"portrait": "竖屏", "landscape": "横屏"},
}


def _list_text(values: tuple[Any, ...] | list[Any], lang: Lang) -> str:
    """`10, 15 or 25` in English, `10、15 或 25` in Chinese."""
    items = [_ORIENTATION_WORDS[lang].get(str(v), str(v)) for v in values]
    if len(items) <= 1:
        return "".join(items)
    if lang == "zh-CN":
        return f"{'、'.join(items[:-1])} 或 {items[-1]}"
    return f"{', '.join(items[:-1])} or {items[-1]}"


def _variant(key: str, raw: Mapping[str, Any]) -> str:
    """A model rule's `_one`/`_none` sentence when its list (or `max`) holds one or none."""
    for name in ("durations", "models", "max"):
        value = raw.get(name)
        size = value if name == "max" else len(value) if isinstance(value, tuple | list) else None
        if size in (0, 1):
            variant = f"{key}_{'one' if size == 1 else 'none'}"
            if has_key(variant):
                return variant
    return key


def invalid_request_text(exc: InvalidRequest, locale: str | discord.Locale | None) -> str:
    """The member-facing sentence for a rejected request, translated when we know the code."""
    key = f"invalid.{exc.code}"
    if not has_key(key):
        return t("invalid.generic", locale, detail=exc.message)
    raw = _invalid_params(exc)
    key = _variant(key, raw)
    lang = normalize_locale(locale)
    params = {
        name: f"{value:,}"
        if isinstance(value, int) and not isinstance(value, bool)
        else _list_text(value, lang)
        if isinstance(value, tuple | list)
        else value
        for name, value in raw.items()
    }
    if not has_key(key, params):
        return exc.message  # the sentence has numbers we could not recover: English is better
    return t(key, locale, **params)


def job_error_text(code: str, job_id: int, locale: str | discord.Locale | None) -> str:
    """The sentence for a refused job action (`JobError.code`)."""
    key = f"job.{code}"
    return t(key if has_key(key) else "generic.internal", locale, id=job_id)


def attachment_error_text(
    code: str, name: str, locale: str | discord.Locale | None, *, limit_mb: float = 10
) -> str:
    """The sentence for an `AttachmentError` (bot/images.py); it carries only code and name."""
    key = f"attachment.{code}"
    if not has_key(key):
        return t("invalid.image_type", locale)
    shown = discord.utils.escape_mentions(discord.utils.escape_markdown(name))
    return t(key, locale, name=shown, limit_mb=f"{limit_mb:g}")


def quota_error_text(exc: Any, locale: str | discord.Locale | None) -> str:
    """The sentence for a `QuotaExceededError` (scope, used, limit, cost, resets_at)."""
    scope = "guild" if exc.scope == "guild" else "user"
    if exc.limit == 0:
        return t(f"quota.{scope}_off", locale)
    return t(
        f"quota.{scope}_exhausted",
        locale,
        used=exc.used,
        limit=exc.limit,
        cost=exc.cost,
        resets=discord.utils.format_dt(exc.resets_at, "R"),
    )


def alias_error_text(exc: Any, locale: str | discord.Locale | None) -> str:
    """The sentence for an `AliasError` (code, message; `aliases` for unknown ones)."""
    code = getattr(exc, "code", "")
    if code == "alias_unknown":
        names = ", ".join(f"@{name}" for name in getattr(exc, "aliases", []))
        return t("alias.alias_unknown", locale, names=discord.utils.escape_markdown(names))
    if code == "alias_taken":
        match = re.search(r"@[\w-]+", getattr(exc, "message", ""))
        return t("alias.alias_taken", locale, alias=match[0] if match else "")
    if code == "alias_invalid":
        return t("alias.alias_invalid", locale)
    return str(getattr(exc, "message", exc))


def model_not_allowed_text(exc: Any, locale: str | discord.Locale | None) -> str:
    """The sentence for a `ModelNotAllowedError`: the model refused and those allowed here."""
    allowed = tuple(getattr(exc, "allowed", ()))
    if not allowed:
        return t("settings.none_allowed", locale)
    return t("settings.not_allowed", locale, model=exc.model, models=", ".join(allowed))


def relay_error_text(code: str | None, locale: str | discord.Locale | None, **extra: Any) -> str:
    """The sentence for a stored error code: relay errors, request rule breaks, or a default."""
    if code:
        for key in (f"error.{code}", f"invalid.{code}"):
            if has_key(key):
                return t(key, locale, **extra)
    return t("error.relay_error", locale)


# --- Slash command translations ---------------------------------------------------------

ZH_COMMAND_TEXT: Final[dict[str, str]] = {
    # Command descriptions.
    "Render a video from a prompt": "根据提示词生成视频",
    "Render a video from timed shots": "根据分镜生成视频",
    "Render a storyboard of timed shots": "根据分镜生成视频",
    "Show your video quota": "查看你的视频额度",
    "Show your and this server's video units": "查看你和本服务器的视频额度",
    "List your recent videos": "列出你最近的视频",
    "Show a video job": "查看视频任务",
    "Cancel a video that is still rendering": "取消正在生成的视频",
    "Manage character aliases": "管理角色别名",
    "Create a character from a video clip": "从视频片段创建角色",
    "List this server's characters": "列出本服务器的角色",
    "Remove a character alias": "删除角色别名",
    "Check the video services": "检查视频服务状态",
    "Bot administration": "机器人管理",
    # Option descriptions.
    "What the video should show": "视频要展示的内容",
    "Portrait or landscape": "竖屏或横屏",
    "Length in seconds": "时长(秒)",
    "Which model renders the video": "用哪个模型生成视频",
    "Length in seconds (each model offers its own)": "时长(秒;各模型支持的时长不同)",
    "High definition, where the model offers it (slower)": "高清(需模型支持;更慢)",
    "A reference image": "参考图片",
    "A second reference image": "第二张参考图片",
    "A third reference image": "第三张参考图片",
    "Hide the video from remixes": "禁止他人混剪该视频",
    "Add a watermark": "添加水印",
    "Job number": "任务编号",
    "Short name to use in prompts": "在提示词中使用的简称",
    "Video clip with the character": "包含角色的视频片段",
    "Second where the character appears": "角色出现的开始秒数",
    "Second where the clip ends": "片段结束的秒数",
    "Member to show": "要查看的成员",
    "A reference image for the first frame": "作为首帧的参考图片",
    "Another reference image": "另一张参考图片",
    "Change a finished video with a new prompt": "用新的提示词修改已完成的视频",
    "Clear the usage of the server or a member": "清除本服务器或某成员的用量",
    "Give extra units to the server or a member": "给本服务器或某成员增加额度",
    "How many units": "额度数量",
    "Job number of a finished video with the character": "包含该角色的已完成视频的任务编号",
    "Keep the video unpublished at the relay (it can't be remixed)": (
        "不在中转服务公开视频(无法被混剪)"
    ),
    "Link to a video clip with the character": "包含该角色的视频片段链接",
    "Manage this server's video units": "管理本服务器的视频额度",
    "Portrait (default) or landscape": "竖屏(默认)或横屏",
    "Render a multi-shot video from a storyboard": "根据分镜生成多镜头视频",
    "Set the monthly server limit and daily member limit": "设置服务器每月上限和成员每日上限",
    "Show the video queue and your place in it": "查看视频队列和你的排队位置",
    "The job number of the finished video": "已完成视频的任务编号",
    "Total length in seconds; the shots must add up to it": "总时长(秒);各镜头时长之和须与其相等",
    "Units per day for each member (empty = keep)": "每位成员每日额度(留空 = 不变)",
    "Units per month for the whole server (empty = keep)": "整个服务器每月额度(留空 = 不变)",
    "What should happen in the video? Use @alias for a saved character": (
        "视频里发生什么?用 @别名 引用已保存的角色"
    ),
    "What to change": "要修改的内容",
    "Your video jobs": "你的视频任务",
    # /settings and /settings-admin (cogs/settings.py).
    "Your video defaults in this server": "你在本服务器的视频默认设置",
    "Show your defaults, the server's and the models allowed here": (
        "查看你的默认设置、本服务器的默认设置和允许的模型"
    ),
    "Set your defaults for /video in this server": "设置你在本服务器使用 /video 的默认选项",
    "Clear your defaults in this server": "清除你在本服务器的默认设置",
    "Only this option (empty = all of them)": "只清除这一项(留空 = 全部)",
    "Default model": "默认模型",
    "Default orientation": "默认方向",
    "Default length in seconds": "默认时长(秒)",
    "Default HD (models with HD only)": "默认高清(仅限支持高清的模型)",
    "Keep videos unpublished at the relay by default (no remixes)": (
        "默认不在中转服务公开视频(无法被混剪)"
    ),
    "Set this server's video defaults and allowed models": "设置本服务器的视频默认选项和允许的模型",
    "The server's defaults for /video": "本服务器 /video 的默认选项",
    "Which models members can use": "成员可以使用哪些模型",
    "Set the server's defaults for /video": "设置本服务器 /video 的默认选项",
    "Clear the server's defaults": "清除本服务器的默认设置",
    "Let members use a model here again": "重新允许成员在这里使用某个模型",
    "Stop members using a model here": "禁止成员在这里使用某个模型",
    "Let members use every model again": "重新允许成员使用所有模型",
    "The model": "模型",
    "Model": "模型",
    "Orientation": "方向",
    "Duration": "时长",
    "HD": "高清",
    "Private": "私密",
    # Choice names.
    "Portrait (9:16)": "竖屏(9:16)",
    "Landscape (16:9)": "横屏(16:9)",
    "Portrait": "竖屏",
    "Landscape": "横屏",
    "10 seconds": "10 秒",
    "15 seconds": "15 秒",
    "25 seconds (pro)": "25 秒(pro)",
    "25 seconds": "25 秒",
}

_NAME_LOCATIONS = frozenset(
    {
        TranslationContextLocation.command_name,
        TranslationContextLocation.group_name,
        TranslationContextLocation.parameter_name,
    }
)
_DISCORD_TEXT_LIMIT = 100  # descriptions and choice names


class BotTranslator(app_commands.Translator):
    """Simplified Chinese for command descriptions and choice names.

    Names stay English: Discord validates localized names strictly and members type them.
    A call site can carry its own translation: `locale_str("...", zh="...")`.
    """

    def __init__(self, table: Mapping[str, str] = ZH_COMMAND_TEXT) -> None:
        self._table = table

    async def translate(
        self, string: locale_str, locale: discord.Locale, context: TranslationContextTypes
    ) -> str | None:
        if locale is not discord.Locale.chinese or context.location in _NAME_LOCATIONS:
            return None
        text = string.extras.get("zh") or self._table.get(string.message)
        if not text:
            return None
        return str(text)[:_DISCORD_TEXT_LIMIT]

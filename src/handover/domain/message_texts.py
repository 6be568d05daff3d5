"""The words of every message to a person, in English and Simplified Chinese.

A template is a pair of format strings filled from the message's `params`; the sender
renders just before sending, so the outbox keeps data, not prose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The languages Handover speaks to people in.
LANGUAGES = ("en", "zh-CN")


def language_for(region: str) -> str:
    """The language to write to a number's holder in when they chose none."""
    return "zh-CN" if region == "CN" else "en"


TEXTS: dict[str, dict[str, str]] = {
    "sign_in_code": {
        "en": (
            "Handover sign-in code: {code} (or the long code {long_code}). It expires in "
            "{lifetime}. Never share it: Handover will never ask you for it."
        ),
        "zh-CN": (
            "【Handover】登录验证码：{code}（或长验证码 {long_code}），{lifetime}内有效。"
            "请勿告诉他人，我们不会向您索要。"
        ),
    },
    "renewal_complete": {
        "en": (
            "Handover: every platform has answered your renewal of {number}: "
            "{resolved} of {platforms} resolved, {rejected} refused. Details: sign in to Handover."
        ),
        "zh-CN": (
            "号码焕新：您为 {number} 发起的焕新已全部答复："
            "{platforms} 个平台中 {resolved} 个已处理，{rejected} 个拒绝。详情请登录查看。"
        ),
    },
    "freeze_reminder": {
        "en": (
            "Handover: your number {number} was cancelled on {cancelled_on}; it may be given "
            "to someone else from {release_from}. {accounts} account(s) are still bound to it "
            "(high-value: {high_value}). Restore it with your carrier, or unbind them at "
            "{public_url}"
        ),
        "zh-CN": (
            "【Handover】您的号码 {number} 已于 {cancelled_on} 销号，最早可能于 {release_from} "
            "起分配给他人。该号码仍绑定 {accounts} 个账号（高价值：{high_value}）。"
            "请向运营商恢复号码，或前往 {public_url} 解绑。"
        ),
    },
}


def render(template: str, language: str, params: Mapping[str, Any]) -> str:
    """The message text; English when the language has no translation. A `minutes`
    parameter is also written out for people as `lifetime` ("21 hours 20 minutes")."""
    texts = TEXTS.get(template)
    if texts is None:
        raise KeyError(f"no message template {template!r}")
    chosen = language if language in texts else "en"
    if "minutes" in params:
        params = {**params, "lifetime": lifetime(int(params["minutes"]), chosen)}
    return texts[chosen].format(**params)


def lifetime(minutes: int, language: str) -> str:
    """A code's life as people say it: minutes under an hour, else hours and minutes (a
    code that lives until the next text may be sent can last most of a day)."""
    hours, rest = divmod(max(minutes, 1), 60)
    if language == "zh-CN":
        return (f"{hours}小时" if hours else "") + (f"{rest}分钟" if rest or not hours else "")
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("s" if hours != 1 else ""))
    if rest or not hours:
        parts.append(f"{rest} minute" + ("s" if rest != 1 else ""))
    return " ".join(parts)

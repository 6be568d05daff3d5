"""The words of the web pages in English and Simplified Chinese.

Each entry is a format string per language, filled with named parameters; a missing
translation falls back to English.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LANGUAGE = "en"

MESSAGES: dict[str, dict[str, str]] = {
    "verify.title": {"en": "Verify a tenure certificate", "zh-CN": "验证号码持有证明"},
    "verify.intro": {
        "en": "Paste a certificate's token, or scan its QR code, to check it against "
        "Handover's published keys and its number ledger.",
        "zh-CN": "粘贴证明上的令牌（或扫描其二维码），用 Handover 公布的公钥和号码台账核验。",
    },
    "verify.token": {"en": "Certificate token", "zh-CN": "证明令牌"},
    "verify.submit": {"en": "Verify", "zh-CN": "验证"},
    "verdict.current": {
        "en": "Valid — number {number} has been held by its current subscriber since "
        "{since} (still current).",
        "zh-CN": "有效——号码 {number} 自 {since} 起由当前用户持有（至今未变）。",
    },
    "verdict.superseded": {
        "en": "Superseded — this certificate is genuine, but number {number} has been "
        "cancelled or has changed hands since it was issued. It no longer speaks for "
        "the number's current subscriber.",
        "zh-CN": "已失效——此证明是真实的，但号码 {number} 在签发后已被注销或易主，"
        "不再代表该号码的当前用户。",
    },
    "verdict.expired": {
        "en": "Expired — this certificate expired on {expires}. Ask its holder for a new one.",
        "zh-CN": "已过期——此证明已于 {expires} 过期，请向持有人索取新的证明。",
    },
    "verdict.not_yet_valid": {
        "en": "Not yet valid — this certificate is valid only from {not_before}.",
        "zh-CN": "尚未生效——此证明自 {not_before} 起才生效。",
    },
    "verdict.bad_signature": {
        "en": "Not genuine — the signature does not verify against Handover's published "
        "keys: the certificate is forged, altered, or not a tenure certificate.",
        "zh-CN": "非真实证明——签名无法用 Handover 公布的公钥验证：证明被伪造、被篡改，"
        "或者并非号码持有证明。",
    },
    "verdict.malformed": {
        "en": "Malformed — this is not a tenure certificate token.",
        "zh-CN": "格式错误——这不是号码持有证明的令牌。",
    },
    "field.number": {"en": "Number", "zh-CN": "号码"},
    "field.held_since": {"en": "Held since", "zh-CN": "持有起始日"},
    "field.previous_tenure_ended": {"en": "Earlier tenure ended", "zh-CN": "上一段使用期结束于"},
    "field.carrier": {"en": "Carrier", "zh-CN": "运营商"},
    "field.issuer": {"en": "Issuer", "zh-CN": "签发方"},
    "field.issued": {"en": "Issued", "zh-CN": "签发时间"},
    "field.expires": {"en": "Expires", "zh-CN": "有效期至"},
    "field.jti": {"en": "Certificate ID", "zh-CN": "证明编号"},
    "field.token": {"en": "Token", "zh-CN": "令牌"},
    "field.detail": {"en": "Why", "zh-CN": "原因"},
    "print.title": {"en": "Tenure certificate", "zh-CN": "号码持有证明"},
    "print.statement": {
        "en": "This certifies that mobile number {number} has been held by its current "
        "subscriber since {since}.",
        "zh-CN": "兹证明：手机号码 {number} 自 {since} 起由当前用户持有。",
    },
    "print.reassigned": {
        "en": "The number was held by someone else before; that earlier tenure ended on "
        "{ended}. This certificate identifies neither subscriber.",
        "zh-CN": "该号码此前由他人使用，上一段使用期已于 {ended} 结束。"
        "本证明不含任何一方用户的身份信息。",
    },
    "print.first_tenure": {
        "en": "The ledger holds no earlier tenure of this number. This certificate does not "
        "identify the subscriber.",
        "zh-CN": "台账中没有该号码更早的使用记录。本证明不含用户的身份信息。",
    },
    "print.verify": {
        "en": "Scan the QR code, or open {url}, to check that this certificate is genuine "
        "and still current. Offline, verify the token's signature with the keys at {jwks}.",
        "zh-CN": "扫描二维码或打开 {url}，可核验此证明是否真实、是否仍然有效；"
        "离线时可用 {jwks} 公布的公钥验证令牌签名。",
    },
    "print.button": {"en": "Print", "zh-CN": "打印"},
    "print.refused": {
        "en": "Only a valid, current certificate can be printed.",
        "zh-CN": "只有真实、有效且仍然适用的证明才能打印。",
    },
    "lang.other": {"en": "中文", "zh-CN": "English"},
}


def say(language: str, key: str, **params: Any) -> str:
    texts = MESSAGES[key]
    return (texts.get(language) or texts[DEFAULT_LANGUAGE]).format(**params)


class Words:
    """The catalog in one language, for templates: `t("verify.title")`."""

    def __init__(self, language: str) -> None:
        self.language = language

    def __call__(self, key: str, **params: Any) -> str:
        return say(self.language, key, **params)

"""Message texts as people read them."""

from __future__ import annotations

import pytest

from handover.domain.message_texts import lifetime, render


@pytest.mark.parametrize(
    ("minutes", "en", "zh"),
    [
        (5, "5 minutes", "5分钟"),
        (1, "1 minute", "1分钟"),
        (60, "1 hour", "1小时"),
        (80, "1 hour 20 minutes", "1小时20分钟"),
        (1280, "21 hours 20 minutes", "21小时20分钟"),
    ],
)
def test_a_codes_life_is_written_as_people_say_it(minutes: int, en: str, zh: str) -> None:
    assert lifetime(minutes, "en") == en
    assert lifetime(minutes, "zh-CN") == zh


def test_a_long_lived_sign_in_code_says_hours_not_a_thousand_minutes() -> None:
    params = {"code": "123456", "long_code": "ABCD-EFGH-JKMN-PQRS", "minutes": 1280}
    assert "21小时20分钟内有效" in render("sign_in_code", "zh-CN", params)
    assert "expires in 21 hours 20 minutes." in render("sign_in_code", "en", params)
    assert "1280" not in render("sign_in_code", "en", params)


def test_a_language_without_a_translation_reads_english() -> None:
    params = {"code": "123456", "long_code": "ABCD-EFGH-JKMN-PQRS", "minutes": 5}
    assert render("sign_in_code", "fr", params) == render("sign_in_code", "en", params)

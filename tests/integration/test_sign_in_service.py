"""Sign-in and sessions as services on the real store (both engines), at explicit times.

The SMS sender is the real console sender: it keeps what it sent, so a test reads the code
the way the demo page does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from handover.adapters.messaging import ConsoleSmsSender
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.lifecycle import State
from handover.domain.sign_in import (
    SESSION_TTL,
    CodeExpired,
    LockedOut,
    NoCodeWaiting,
    TooManyCodes,
    WrongCode,
)
from handover.services import people, reporting, sign_in
from handover.services.ports import UnitOfWorkFactory

POLICY = FreezePolicy()

KEY = b"sign-in-test-key"
NUMBER = "+8613800138000"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def event(event_id: str, kind: str, at: str, number: str = NUMBER, **more: str) -> dict[str, Any]:
    return {"event_id": event_id, "number": number, "event": kind, "occurred_at": at, **more}


def report(uow_factory: UnitOfWorkFactory, *events: dict[str, Any]) -> None:
    result = reporting.report_events(
        uow_factory, "cm", list(events), region="CN", now=T0, policy=POLICY
    )
    assert result.accepted == len(events), result.outcomes


@pytest.fixture
def held(uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]) -> UnitOfWorkFactory:
    """+8613800138000 active at cm for subscriber S1 since 2024-07-01."""
    report(uow_factory, event("a1", "activated", "2024-07-01", subscriber="S1"))
    return uow_factory


@pytest.fixture
def sms() -> ConsoleSmsSender:
    return ConsoleSmsSender()


def ask(uow_factory: UnitOfWorkFactory, sms: ConsoleSmsSender, at: datetime, **kw: Any) -> str:
    """Ask for a code and read it from what the console sender sent."""
    number = kw.pop("number", NUMBER)
    address = kw.pop("address", "10.0.0.1")
    sign_in.request_code(uow_factory, sms, number, address, at, key=KEY, **kw)
    text = sms.last(number)
    assert text is not None
    found = re.search(r"\b(\d{6})\b", text)
    assert found is not None
    return found.group(1)


def test_a_code_opens_one_session_bound_to_the_tenure(
    held: UnitOfWorkFactory, sms: ConsoleSmsSender
) -> None:
    code = ask(held, sms, T0)
    assert "5分钟" in (sms.last(NUMBER) or "")  # a Chinese number gets the zh-CN text
    issued = sign_in.sign_in(
        held,
        "+86 138 0013 8000",
        code,
        "10.0.0.1",
        T0 + timedelta(seconds=30),
        key=KEY,
        ttl=SESSION_TTL,
    )
    assert issued.token.startswith("hos_")
    assert issued.expires_at == T0 + timedelta(seconds=30, hours=8)
    person = sign_in.session(held, issued.token, T0 + timedelta(minutes=1))
    assert (person.e164, person.carrier, person.subscriber, person.state) == (
        NUMBER,
        "cm",
        "S1",
        State.ACTIVE,
    )
    assert person.tenure_start == datetime(2024, 7, 1, tzinfo=UTC)
    with pytest.raises(NoCodeWaiting, match="already used"):
        sign_in.sign_in(
            held, NUMBER, code, "10.0.0.1", T0 + timedelta(minutes=1), key=KEY, ttl=SESSION_TTL
        )
    with pytest.raises(sign_in.NotSignedIn):
        sign_in.session(held, issued.token, issued.expires_at)


def test_an_expired_code_is_refused(held: UnitOfWorkFactory, sms: ConsoleSmsSender) -> None:
    code = ask(held, sms, T0)
    with pytest.raises(CodeExpired):
        sign_in.sign_in(
            held, NUMBER, code, "10.0.0.1", T0 + timedelta(minutes=5), key=KEY, ttl=SESSION_TTL
        )


def test_five_wrong_codes_lock_the_number(held: UnitOfWorkFactory, sms: ConsoleSmsSender) -> None:
    code = ask(held, sms, T0)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for i in range(5):
        with pytest.raises(WrongCode):
            sign_in.sign_in(
                held, NUMBER, wrong, "10.0.0.9", T0 + timedelta(seconds=i), key=KEY, ttl=SESSION_TTL
            )
    with pytest.raises(LockedOut) as refused:
        sign_in.sign_in(
            held, NUMBER, code, "10.0.0.1", T0 + timedelta(seconds=10), key=KEY, ttl=SESSION_TTL
        )
    assert refused.value.retry_after == 15 * 60 - 6
    with pytest.raises(LockedOut):
        sign_in.request_code(held, sms, NUMBER, "10.0.0.1", T0 + timedelta(minutes=2), key=KEY)
    later = T0 + timedelta(minutes=16)
    fresh = ask(held, sms, later)
    assert sign_in.sign_in(held, NUMBER, fresh, "10.0.0.1", later, key=KEY, ttl=SESSION_TTL).token


def test_unknown_numbers_get_no_sms_but_the_same_answer_and_limits(
    held: UnitOfWorkFactory, sms: ConsoleSmsSender
) -> None:
    stranger = "+8613900139000"
    sign_in.request_code(held, sms, stranger, "10.0.0.1", T0, key=KEY)
    assert sms.messages(stranger) == []
    with pytest.raises(TooManyCodes):
        sign_in.request_code(held, sms, stranger, "10.0.0.1", T0 + timedelta(seconds=5), key=KEY)
    with pytest.raises(WrongCode):
        sign_in.sign_in(
            held,
            stranger,
            "123456",
            "10.0.0.1",
            T0 + timedelta(seconds=9),
            key=KEY,
            ttl=SESSION_TTL,
        )


def test_one_address_may_ask_for_twenty_codes_an_hour(
    held: UnitOfWorkFactory, sms: ConsoleSmsSender
) -> None:
    for i in range(20):
        at = T0 + timedelta(seconds=i)
        sign_in.request_code(held, sms, f"+861390013{i:04d}", "10.0.0.7", at, key=KEY)
    with pytest.raises(TooManyCodes, match="address"):
        sign_in.request_code(held, sms, NUMBER, "10.0.0.7", T0 + timedelta(minutes=1), key=KEY)
    ask(held, sms, T0 + timedelta(minutes=1), address="10.0.0.8")


def test_a_session_ends_when_the_number_changes_hands(
    held: UnitOfWorkFactory, sms: ConsoleSmsSender
) -> None:
    at = datetime(2024, 8, 1, tzinfo=UTC)
    code = ask(held, sms, at)
    token = sign_in.sign_in(held, NUMBER, code, "10.0.0.1", at, key=KEY, ttl=SESSION_TTL).token
    report(held, event("c1", "cancelled", "2024-08-01T01:00:00"))
    assert sign_in.session(held, token, at + timedelta(hours=2)).state is State.FROZEN
    report(
        held,
        event("r1", "released", "2024-11-01"),
        event("a2", "activated", "2024-11-02", subscriber="S9"),
    )
    with pytest.raises(sign_in.NotSignedIn, match="changed hands"):
        sign_in.session(held, token, at + timedelta(hours=3))


def test_sign_out_revokes_the_session(held: UnitOfWorkFactory, sms: ConsoleSmsSender) -> None:
    token = sign_in.sign_in(
        held, NUMBER, ask(held, sms, T0), "10.0.0.1", T0, key=KEY, ttl=SESSION_TTL
    ).token
    assert sign_in.sign_out(held, token, T0 + timedelta(minutes=1))
    assert not sign_in.sign_out(held, token, T0 + timedelta(minutes=2))
    with pytest.raises(sign_in.NotSignedIn):
        sign_in.session(held, token, T0 + timedelta(minutes=3))


def test_my_numbers_follow_the_carriers_links(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]
) -> None:
    old, new, other = NUMBER, "+8613900139000", "+8613700137000"
    report(
        uow_factory,
        event("a1", "activated", "2019-01-01", old, subscriber="S0"),
        event("c1", "cancelled", "2024-01-01", old),
        event("r1", "released", "2024-06-01", old),
        event("a2", "activated", "2024-07-01", old, subscriber="S9"),
        event("a3", "activated", "2024-02-01", new, subscriber="S1"),
        event("a4", "activated", "2024-03-01", other, subscriber="S2"),
    )
    link = partial(people.link_subscribers, uow_factory, "cm", now=T0)
    assert link("S1", ["S0"]).created == 1
    assert link("S0", ["S1"]).created == 0  # one link, either way round
    assert link("S2", ["S0"]).same_as == ["S0", "S1"]
    with uow_factory() as uow:
        mine = people.numbers_of(uow, new)
        theirs = people.numbers_of(uow, old)
        assert people.holder(uow, old) is not None
    assert [(h.e164, h.current) for h in mine] == [(other, True), (new, True), (old, False)]
    assert mine[-1].end == datetime(2024, 1, 1, tzinfo=UTC)
    assert [(h.e164, h.current, h.start.year) for h in theirs] == [(old, True, 2024)]
    other_carrier = partial(people.link_subscribers, uow_factory, "cu", now=T0)
    other_carrier("S9", ["S1"])  # cu's refs are not cm's: nothing joins
    with uow_factory() as uow:
        assert len(people.numbers_of(uow, old)) == 1


def test_a_contact_set_under_a_new_ref_reaches_the_person_about_an_old_one(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]
) -> None:
    set_contact = partial(people.set_contact, uow_factory, "cm")
    set_contact("S1", "email", "li.na@example.com", "zh-CN", T0)
    with uow_factory() as uow:
        assert people.contact_of(uow, "cm", "S0") is None
    people.link_subscribers(uow_factory, "cm", "S1", ["S0"], T0)
    set_contact("S2", "sms", "+8613700137000", "en", T0 + timedelta(days=1))
    with uow_factory() as uow:
        found = people.contact_of(uow, "cm", "S0")
        assert found is not None and found.address == "li.na@example.com"
    people.link_subscribers(uow_factory, "cm", "S2", ["S0"], T0)
    with uow_factory() as uow:
        newest = people.contact_of(uow, "cm", "S0")
        assert newest is not None and newest.address == "+8613700137000"
        own = people.contact_of(uow, "cm", "S1")
        assert own is not None and own.address == "li.na@example.com"


def test_parallel_wrong_codes_cannot_pass_the_lockout(
    held: UnitOfWorkFactory, sms: ConsoleSmsSender
) -> None:
    """Ten guesses at once: the number is locked while each is judged, so only five are
    judged as wrong codes and the rest meet the lockout (a snapshot read let all ten in)."""
    from concurrent.futures import ThreadPoolExecutor

    code = ask(held, sms, T0)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    def guess(i: int) -> str:
        try:
            sign_in.sign_in(
                held,
                NUMBER,
                wrong,
                f"10.0.1.{i}",
                T0 + timedelta(seconds=5),
                key=KEY,
                ttl=SESSION_TTL,
            )
        except (WrongCode, LockedOut) as refused:
            return type(refused).__name__
        return "signed in"

    with ThreadPoolExecutor(10) as pool:
        outcomes = sorted(pool.map(guess, range(10)))
    assert outcomes == ["LockedOut"] * 5 + ["WrongCode"] * 5

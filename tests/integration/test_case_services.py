"""Renewal cases through the services on both stores: open, answer, escalate, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handover.domain.cases import CaseError, CaseState
from handover.domain.freeze_policy import FreezePolicy
from handover.domain.ssf.events import CASE_CANCELLED, CASE_OPENED, CASE_REMINDER
from handover.services import access, bindings, cases
from handover.services.ports import UnitOfWorkFactory
from handover.services.reporting import report_events

POLICY = FreezePolicy()

NUMBER = "+8613800138000"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def report(uow_factory: UnitOfWorkFactory, *rows: tuple[str, str, datetime, str | None]) -> None:
    items = [
        {
            "event_id": eid,
            "number": NUMBER,
            "event": kind,
            "occurred_at": at.isoformat(),
            "subscriber": sub,
        }
        for eid, kind, at, sub in rows
    ]
    result = report_events(uow_factory, "cm", items, now=day(400), policy=POLICY)
    assert result.accepted == len(rows), result.outcomes


@pytest.fixture
def recycled(uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]) -> datetime:
    """NUMBER held by s1 from day 0, cancelled on day 10, released on day 100 and given
    to s2 on day 120; platforms: bank (banking, bound by s1), chat (social, bound by s1
    and by s2 after the recycling), shop (e-commerce, nothing registered)."""
    access.register_platform(uow_factory, "bank", "Bank", "banking", "high")
    access.register_platform(uow_factory, "chat", "Chat", "social", "medium")
    access.register_platform(uow_factory, "shop", "Shop", "e_commerce", "low")
    report(
        uow_factory,
        ("e1", "activated", day(0), "s1"),
        ("e2", "cancelled", day(10), None),
        ("e3", "released", day(100), None),
        ("e4", "activated", day(120), "s2"),
    )
    # Registered after the release (a platform that joined late), so it held no release.
    bindings.register_bindings(
        uow_factory,
        "bank",
        [{"number": NUMBER, "account_ref": "b-1", "bound_since": "2024-01-02", "tier": "high"}],
        now=day(130),
    )
    for ref, since in (("c-old", "2024-01-03"), ("c-new", day(121).date().isoformat())):
        bindings.register_bindings(
            uow_factory,
            "chat",
            [{"number": NUMBER, "account_ref": ref, "bound_since": since, "tier": "medium"}],
            now=day(130),
        )
    return day(120)


def test_the_owner_chooses_from_platforms_listing_the_number_before_the_tenure(
    uow_factory: UnitOfWorkFactory, recycled: datetime
) -> None:
    choice, platforms = cases.choice_for(uow_factory, NUMBER)
    assert choice.tenure_start == recycled
    assert choice.listed == ("bank", "chat")
    assert choice.others == ("shop",)
    assert [p.name for p in platforms] == ["Bank", "Chat", "Shop"]


def test_a_renewal_opens_one_case_per_platform_with_deadlines_by_category(
    uow_factory: UnitOfWorkFactory, recycled: datetime
) -> None:
    now = day(130)
    progress = cases.request_renewal(uow_factory, NUMBER, ["bank", "chat"], True, now=now)
    deadlines = {item.platform.id: item.case.deadline - now for item in progress.cases}
    assert deadlines == {
        "bank": timedelta(hours=24),
        "chat": timedelta(hours=72),
        "shop": timedelta(hours=72),
    }
    again = cases.request_renewal(uow_factory, NUMBER, ["bank"], True, now=now + timedelta(hours=1))
    assert again.renewal.id == progress.renewal.id
    with uow_factory() as uow:
        signals = uow.signals.after(
            0, stream_id="", platform_id="bank", event_types=[CASE_OPENED], limit=10
        )
    bank = [s for s in signals if s.platform_id == "bank"]
    assert len(bank) == 1
    assert bank[0].payload["bound_before"] == int(recycled.timestamp())
    assert "account_ref" not in bank[0].payload


def test_answers_resolve_bindings_and_complete_the_renewal(
    uow_factory: UnitOfWorkFactory, recycled: datetime
) -> None:
    now = day(130)
    progress = cases.request_renewal(uow_factory, NUMBER, ["bank", "chat", "shop"], False, now=now)
    ids = {item.platform.id: item.case.id for item in progress.cases}
    case, changed = cases.answer_case(uow_factory, "chat", ids["chat"], "unbound", None, now=now)
    assert changed and case.state is CaseState.ANSWERED
    assert cases.answer_case(uow_factory, "chat", ids["chat"], "unbound", None, now=now)[1] is False
    with pytest.raises(CaseError):
        cases.answer_case(uow_factory, "chat", ids["chat"], "rejected", "no", now=now)
    with pytest.raises(cases.CaseNotFound):
        cases.answer_case(uow_factory, "bank", ids["chat"], "unbound", None, now=now)
    with uow_factory() as uow:
        left = {b.account_ref for b in uow.bindings.for_number(NUMBER) if b.platform_id == "chat"}
    assert left == {"c-new"}  # the new owner's own account is never touched
    cases.answer_case(uow_factory, "shop", ids["shop"], "no_account", None, now=now)
    with pytest.raises(CaseError):
        cases.answer_case(uow_factory, "bank", ids["bank"], "rejected", "  ", now=now)
    cases.answer_case(uow_factory, "bank", ids["bank"], "rejected", "we need ID", now=now)
    done = cases.renewal_progress(uow_factory, NUMBER, progress.renewal.id)
    assert done.done and done.renewal.completed_at == now
    with uow_factory() as uow:
        message = uow.messages.for_key(f"renewal-done:{progress.renewal.id}")
    assert message is not None and message.recipient == NUMBER
    assert message.params == {"number": NUMBER, "platforms": 3, "resolved": 2, "rejected": 1}


def test_overdue_cases_are_escalated_once_and_listed(
    uow_factory: UnitOfWorkFactory, recycled: datetime
) -> None:
    now = day(130)
    progress = cases.request_renewal(uow_factory, NUMBER, ["bank", "chat"], False, now=now)
    assert cases.escalate_overdue(uow_factory, now=now + timedelta(hours=23)) == 0
    assert cases.escalate_overdue(uow_factory, now=now + timedelta(hours=25)) == 1
    assert cases.escalate_overdue(uow_factory, now=now + timedelta(hours=26)) == 0
    late = cases.overdue_cases(uow_factory, now=now + timedelta(hours=26))
    assert [item.platform.id for item in late] == ["bank"]
    bank = next(i.case for i in progress.cases if i.platform.id == "bank")
    detail = cases.case_detail(uow_factory, bank.id)
    assert [r.what for r in detail.history] == ["opened", "escalated"]
    assert all(r.log_index is not None for r in detail.history)
    with uow_factory() as uow:
        reminders = uow.signals.after(
            0, stream_id="", platform_id="bank", event_types=[CASE_REMINDER], limit=10
        )
    assert [s.payload["overdue_seconds"] for s in reminders] == [3600]
    cases.answer_case(uow_factory, "bank", bank.id, "unbound", None, now=now + timedelta(hours=30))
    assert cases.case_detail(uow_factory, bank.id).history[-1].detail["late"] is True


def test_complaints_reach_the_regulator_with_the_history(
    uow_factory: UnitOfWorkFactory, recycled: datetime
) -> None:
    progress = cases.request_renewal(uow_factory, NUMBER, ["bank"], False, now=day(130))
    case_id = progress.cases[0].case.id
    cases.file_complaint(
        uow_factory, NUMBER, case_id, "still_contacted", "Collectors still call", now=day(131)
    )
    with pytest.raises(CaseError):
        cases.file_complaint(uow_factory, NUMBER, case_id, "angry", "x", now=day(131))
    [(complaint, detail)] = cases.complaint_queue(uow_factory, "open", 10)
    assert complaint.text == "Collectors still call"
    assert [r.what for r in detail.history] == ["opened", "complaint"]


def test_another_number_cannot_see_or_complain_about_the_case(
    uow_factory: UnitOfWorkFactory, recycled: datetime
) -> None:
    other = "+8613900139000"
    report_events(
        uow_factory,
        "cm",
        [
            {
                "event_id": "o1",
                "number": other,
                "event": "activated",
                "occurred_at": day(1).isoformat(),
                "subscriber": "s9",
            }
        ],
        now=day(400),
        policy=POLICY,
    )
    progress = cases.request_renewal(uow_factory, NUMBER, ["bank"], False, now=day(130))
    case_id = progress.cases[0].case.id
    with pytest.raises(cases.CaseNotFound):
        cases.owner_case(uow_factory, other, case_id)
    with pytest.raises(cases.CaseNotFound):
        cases.renewal_progress(uow_factory, other, progress.renewal.id)
    assert cases.owner_cases(uow_factory, other) == []


def test_restoring_cancels_cases_opened_during_the_freeze(
    uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]
) -> None:
    from handover.domain.cases import CaseKind, CasePolicy, Requester, open_case

    access.register_platform(uow_factory, "bank", "Bank", "banking", "high")
    report(uow_factory, ("e1", "activated", day(0), "s1"), ("e2", "cancelled", day(10), None))
    with uow_factory() as uow:
        case, opened = open_case(
            "c1",
            CaseKind.UNBIND,
            Requester.PREVIOUS_OWNER,
            NUMBER,
            "bank",
            "banking",  # type: ignore[arg-type]
            day(0),
            day(11),
            CasePolicy(),
            account_ref="b-1",
        )
        uow.cases.add([case])
        cases.record(uow, [(case, opened)], day(11))
        uow.commit()
    report(uow_factory, ("e3", "restored", day(20), "s1"))
    detail = cases.case_detail(uow_factory, "c1")
    assert detail.case.state is CaseState.CANCELLED
    with uow_factory() as uow:
        cancelled = uow.signals.after(
            0, stream_id="", platform_id="bank", event_types=[CASE_CANCELLED], limit=10
        )
    assert [s.payload["reason"] for s in cancelled] == ["number restored"]

"""Cases, renewals and the previous owner's checklist as pure domain rules (docs/cases.md).

Every kind's outcomes and refusals, deadlines per category, escalation and cancelling,
the renewal boundary (strictly before the tenure), readiness, and what a case tells the
platform (its signal) and the public audit log (its entry).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.domain.audit import Parties, case_entry, freeze_reminder_entry, parties, pseudonym
from handover.domain.bindings import Binding
from handover.domain.cases import (
    MAX_REASON,
    OUTCOMES,
    Case,
    CaseAnswered,
    CaseCancelled,
    CaseError,
    CaseEscalated,
    CaseEvent,
    CaseKind,
    CaseOpened,
    CaseOutcome,
    CasePolicy,
    CaseState,
    ComplaintCategory,
    Requester,
    new_complaint,
    open_case,
)
from handover.domain.checklist import NumberChecklist, Readiness, number_checklist
from handover.domain.lifecycle import Number, State, Tenure
from handover.domain.platforms import Category, Tier
from handover.domain.renewals import (
    RenewalChoice,
    current_tenure,
    platforms_to_ask,
    renewal_choice,
)
from handover.domain.ssf.events import (
    CASE_CANCELLED,
    CASE_OPENED,
    CASE_REMINDER,
    Signal,
    case_signal,
    phone_subject,
)

NUMBER = "+8613800138000"
OTHER = "+8613900139000"
#: The requester's tenure start, and the moment cases are opened.
TENURE = datetime(2024, 3, 1, tzinfo=UTC)
T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)
POLICY = CasePolicy()
KEY = b"unit-log-key"
HOUR = timedelta(hours=1)
K, Out = CaseKind, CaseOutcome

#: What each kind may end in (docs/cases.md), written out rather than read back.
EXPECTED_OUTCOMES = {
    K.UNBIND: {Out.NO_ACCOUNT, Out.UNBOUND, Out.FROZEN, Out.REJECTED},
    K.MIGRATE: {Out.NO_ACCOUNT, Out.MIGRATED, Out.UNBOUND, Out.REJECTED},
    K.WILL: {Out.NO_ACCOUNT, Out.MEMORIALIZED, Out.TRANSFERRED, Out.DELETED, Out.REJECTED},
}


def make_case(
    kind: CaseKind = K.UNBIND,
    requester: Requester = Requester.CURRENT_OWNER,
    *,
    case_id: str = "c1",
    platform: str = "chat",
    category: Category = Category.SOCIAL,
    tenure_start: datetime = TENURE,
    account_ref: str | None = None,
) -> Case:
    """An open case opened at T0 (72 h to answer unless the category is faster)."""
    case, opened = open_case(
        case_id,
        kind,
        requester,
        NUMBER,
        platform,
        category,
        tenure_start,
        T0,
        POLICY,
        account_ref=account_ref,
        migrate_to=OTHER if kind is K.MIGRATE else None,
    )
    assert opened == CaseOpened(case_id, T0)
    return case


def refused(code: str, move: Callable[..., object], *args: object) -> CaseError:
    """Call `move(*args)`, expect `CaseError(code)`."""
    with pytest.raises(CaseError) as caught:
        move(*args)
    assert caught.value.code == code, caught.value.detail
    return caught.value


def refused_unchanged(case: Case, code: str, move: str, *args: object) -> CaseError:
    """A refused move leaves the case exactly as it was."""
    before = copy.deepcopy(case)
    error = refused(code, getattr(case, move), *args)
    assert case == before
    return error


# -- outcomes per kind -------------------------------------------------------------------


def test_the_outcome_table_is_the_designed_one() -> None:
    assert {kind: set(outcomes) for kind, outcomes in OUTCOMES.items()} == EXPECTED_OUTCOMES


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [(kind, outcome) for kind in K for outcome in Out if outcome in EXPECTED_OUTCOMES[kind]],
)
def test_each_kind_accepts_its_outcomes(kind: CaseKind, outcome: CaseOutcome) -> None:
    case = make_case(kind)
    reason = "we need the holder's ID" if outcome is Out.REJECTED else None
    event = case.answer(outcome, reason, T0 + HOUR)
    assert event == CaseAnswered("c1", T0 + HOUR, outcome, reason, late=False)
    assert (case.state, case.outcome, case.reason) == (CaseState.ANSWERED, outcome, reason)
    assert (case.answered_at, case.version) == (T0 + HOUR, 1)


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [(kind, outcome) for kind in K for outcome in Out if outcome not in EXPECTED_OUTCOMES[kind]],
)
def test_each_kind_refuses_other_outcomes(kind: CaseKind, outcome: CaseOutcome) -> None:
    case = make_case(kind)
    error = refused_unchanged(case, "outcome-not-allowed", "answer", outcome, "why", T0)
    assert error.detail.startswith(f"a {kind.value} case ends in one of ")
    assert all(allowed.value in error.detail for allowed in EXPECTED_OUTCOMES[kind])


@pytest.mark.parametrize("reason", [None, "", "   \t "])
def test_a_rejection_needs_a_reason(reason: str | None) -> None:
    refused_unchanged(make_case(), "reason-required", "answer", Out.REJECTED, reason, T0)


@pytest.mark.parametrize(
    "reason", ["x" * (MAX_REASON + 1), "line one\nline two", "bell\x07", "tab\tinside"]
)
def test_a_reason_is_printable_and_at_most_500_characters(reason: str) -> None:
    refused_unchanged(make_case(), "invalid-reason", "answer", Out.REJECTED, reason, T0)
    refused_unchanged(make_case(), "invalid-reason", "answer", Out.UNBOUND, reason, T0)


def test_a_reason_of_exactly_500_characters_is_kept_and_whitespace_trimmed() -> None:
    longest = make_case()
    longest.answer(Out.REJECTED, "y" * MAX_REASON, T0)
    assert longest.reason == "y" * MAX_REASON
    trimmed = make_case()
    assert trimmed.answer(Out.REJECTED, "  需要身份证  ", T0).reason == "需要身份证"
    assert trimmed.reason == "需要身份证"
    blank = make_case()
    assert blank.answer(Out.UNBOUND, "  ", T0).reason is None


def test_a_case_is_answered_once() -> None:
    case = make_case()
    case.answer(Out.UNBOUND, None, T0)
    error = refused_unchanged(case, "case-closed", "answer", Out.UNBOUND, None, T0 + HOUR)
    assert error.detail == "the case is answered"
    refused_unchanged(case, "case-closed", "answer", Out.NO_ACCOUNT, None, T0 + HOUR)


def test_answered_with_recognises_exactly_the_same_answer() -> None:
    case = make_case()
    assert not case.answered_with(Out.REJECTED, "need ID"), "an open case has no answer yet"
    case.answer(Out.REJECTED, "need ID", T0)
    assert case.answered_with(Out.REJECTED, "need ID")
    assert case.answered_with(Out.REJECTED, "  need ID \n"), "compared as stored (trimmed)"
    assert not case.answered_with(Out.REJECTED, "need passport")
    assert not case.answered_with(Out.REJECTED, None)
    assert not case.answered_with(Out.UNBOUND, "need ID")
    unbound = make_case()
    unbound.answer(Out.UNBOUND, None, T0)
    assert unbound.answered_with(Out.UNBOUND, None)
    assert unbound.answered_with(Out.UNBOUND, "   ")
    assert not unbound.answered_with(Out.UNBOUND, "done")


def test_a_cancelled_case_cannot_be_answered_nor_counts_as_answered() -> None:
    case = make_case()
    case.cancel("number restored", T0)
    refused_unchanged(case, "case-closed", "answer", Out.UNBOUND, None, T0)
    assert not case.answered_with(Out.UNBOUND, None)
    assert not case.resolves_binding


@pytest.mark.parametrize(
    ("outcome", "resolves"),
    [
        (Out.NO_ACCOUNT, True),
        (Out.UNBOUND, True),
        (Out.MIGRATED, True),
        (Out.FROZEN, False),
        (Out.REJECTED, False),
    ],
)
def test_which_answers_resolve_the_binding(outcome: CaseOutcome, resolves: bool) -> None:
    case = make_case(K.MIGRATE if outcome is Out.MIGRATED else K.UNBIND)
    assert not case.resolves_binding
    case.answer(outcome, "reason", T0)
    assert case.resolves_binding is resolves


# -- deadlines, lateness, escalation, cancelling -----------------------------------------


@pytest.mark.parametrize(
    ("category", "hours"),
    [
        (Category.PAYMENT, 24),
        (Category.BANKING, 24),
        (Category.LENDING, 24),
        (Category.CLOUD_STORAGE, 72),
        (Category.SOCIAL, 72),
        (Category.E_COMMERCE, 72),
        (Category.GAMING, 72),
        (Category.OTHER, 72),
    ],
)
def test_the_deadline_depends_on_the_platform_category(category: Category, hours: int) -> None:
    assert POLICY.deadline(category, T0) == T0 + timedelta(hours=hours)
    assert make_case(category=category).deadline == T0 + timedelta(hours=hours)


def test_every_category_has_a_deadline_under_test() -> None:
    covered = {"payment", "banking", "lending", "cloud_storage", "social", "e_commerce"}
    assert {c.value for c in Category} == covered | {"gaming", "other"}


def test_a_policy_can_change_the_hours() -> None:
    policy = CasePolicy(default_hours=48, hours={Category.PAYMENT: 4})
    assert policy.deadline(Category.PAYMENT, T0) == T0 + timedelta(hours=4)
    assert policy.deadline(Category.BANKING, T0) == T0 + timedelta(hours=48)


@pytest.mark.parametrize(
    ("after_deadline", "late"),
    [(-HOUR, False), (timedelta(0), False), (timedelta(microseconds=1), True), (HOUR, True)],
)
def test_an_answer_after_the_deadline_is_late(after_deadline: timedelta, late: bool) -> None:
    case = make_case(category=Category.BANKING)
    assert case.answer(Out.UNBOUND, None, case.deadline + after_deadline).late is late


def test_a_case_is_escalated_only_when_overdue_and_only_once() -> None:
    case = make_case(category=Category.PAYMENT)
    deadline = T0 + timedelta(hours=24)
    assert not case.overdue(deadline)
    refused_unchanged(case, "not-overdue", "escalate", deadline)
    event = case.escalate(deadline + timedelta(seconds=90))
    assert event == CaseEscalated("c1", deadline + timedelta(seconds=90), timedelta(seconds=90))
    assert (case.escalated_at, case.state, case.version) == (event.at, CaseState.OPEN, 1)
    error = refused_unchanged(case, "already-escalated", "escalate", deadline + HOUR)
    assert error.detail == "the case was escalated already"
    late = case.answer(Out.UNBOUND, None, deadline + 2 * HOUR)
    assert late.late and case.escalated_at == deadline + timedelta(seconds=90)


def test_a_closed_case_is_never_overdue_nor_escalated() -> None:
    answered, cancelled = make_case(), make_case()
    answered.answer(Out.UNBOUND, None, T0)
    cancelled.cancel("number restored", T0)
    for case in (answered, cancelled):
        assert not case.overdue(T0 + timedelta(days=30))
        refused_unchanged(case, "not-overdue", "escalate", T0 + timedelta(days=30))


def test_only_an_open_case_is_cancelled() -> None:
    case = make_case()
    assert case.cancel("number restored", T0 + HOUR) == CaseCancelled(
        "c1", T0 + HOUR, "number restored"
    )
    assert (case.state, case.cancelled_at, case.version) == (CaseState.CANCELLED, T0 + HOUR, 1)
    refused_unchanged(case, "case-closed", "cancel", "again", T0 + 2 * HOUR)
    answered = make_case()
    answered.answer(Out.NO_ACCOUNT, None, T0)
    error = refused_unchanged(answered, "case-closed", "cancel", "restored", T0)
    assert error.detail == "the case is answered"


def test_an_escalated_case_can_still_be_cancelled() -> None:
    case = make_case()
    case.escalate(T0 + timedelta(days=4))
    case.cancel("number restored", T0 + timedelta(days=5))
    assert case.state is CaseState.CANCELLED and case.version == 2


def test_a_migrate_case_names_another_number() -> None:
    def open_migrate(migrate_to: str | None) -> tuple[Case, CaseOpened]:
        return open_case(
            "c1",
            K.MIGRATE,
            Requester.PREVIOUS_OWNER,
            NUMBER,
            "bank",
            Category.BANKING,
            TENURE,
            T0,
            POLICY,
            account_ref="b-1",
            migrate_to=migrate_to,
        )

    refused("migrate-to-required", open_migrate, None)
    refused("migrate-to-same", open_migrate, NUMBER)
    case, _ = open_migrate(OTHER)
    assert (case.migrate_to, case.account_ref, case.state) == (OTHER, "b-1", CaseState.OPEN)


# -- a case moves forward only (property) ------------------------------------------------

moves = st.one_of(
    st.tuples(
        st.just("answer"), st.sampled_from(list(Out)), st.sampled_from([None, "", "need ID"])
    ),
    st.tuples(st.just("escalate"), st.integers(min_value=0, max_value=200)),
    st.tuples(st.just("cancel"), st.just("number restored")),
)


@given(kind=st.sampled_from(list(K)), steps=st.lists(moves, max_size=12))
def test_a_case_moves_only_from_open_and_never_back(
    kind: CaseKind, steps: list[tuple[object, ...]]
) -> None:
    """open -> answered | cancelled, once; a refused move changes nothing; every accepted
    move bumps the version by one."""
    case = make_case(kind, category=Category.BANKING)
    now = T0
    for name, *args in steps:
        now += HOUR
        before = copy.deepcopy(case)
        call_args = (*args, now) if name != "escalate" else (now + timedelta(hours=args[0]),)
        try:
            event: CaseEvent = getattr(case, str(name))(*call_args)
        except CaseError:
            assert case == before
            continue
        assert before.state is CaseState.OPEN, f"{name} moved a {before.state} case"
        assert case.version == before.version + 1
        if name == "answer":
            assert case.state is CaseState.ANSWERED and case.outcome in EXPECTED_OUTCOMES[kind]
            assert isinstance(event, CaseAnswered)
        elif name == "cancel":
            assert case.state is CaseState.CANCELLED and case.outcome is None
        else:
            assert case.state is CaseState.OPEN and before.escalated_at is None
    if case.state is not CaseState.ANSWERED:
        assert case.outcome is None and case.answered_at is None


# -- complaints --------------------------------------------------------------------------


def test_a_complaint_has_a_known_category_and_some_text() -> None:
    case = make_case()
    complaint = new_complaint("q1", case, "still_contacted", "  Collectors still call  ", T0)
    assert (complaint.case_id, complaint.category, complaint.text, complaint.state) == (
        "c1",
        ComplaintCategory.STILL_CONTACTED,
        "Collectors still call",
        "open",
    )
    refused("invalid-complaint", new_complaint, "q2", case, "angry", "text", T0)
    refused("invalid-complaint", new_complaint, "q2", case, "other", "   ", T0)
    refused("invalid-complaint", new_complaint, "q2", case, "other", "x" * 2001, T0)
    assert new_complaint("q3", case, "other", "x" * 2000, T0).text == "x" * 2000


# -- the renewal's boundary and choice ---------------------------------------------------


def number(state: State = State.ACTIVE, start: datetime = TENURE) -> Number:
    return Number(NUMBER, "CN", state, "cm", Tenure("s2", "cm", start))


def binding(platform: str, since: datetime, ref: str = "acct", tier: Tier = Tier.HIGH) -> Binding:
    return Binding(platform, NUMBER, ref, since, tier)


def test_the_choice_lists_only_platforms_bound_strictly_before_the_tenure() -> None:
    bindings = [
        binding("bank", TENURE - timedelta(microseconds=1)),
        binding("chat", TENURE),  # bound at the very moment the tenure began: the new owner's
        binding("shop", TENURE + timedelta(days=3)),
        binding("bank", TENURE - timedelta(days=400), ref="older"),
    ]
    choice = renewal_choice(number(), bindings, ["shop", "game", "chat", "bank"])
    assert choice == RenewalChoice(NUMBER, TENURE, ("bank",), ("chat", "game", "shop"))


def test_the_choice_offers_only_participating_platforms_as_others() -> None:
    choice = renewal_choice(number(), [], ["zeta", "alpha"])
    assert (choice.listed, choice.others) == ((), ("alpha", "zeta"))


def test_a_suspended_number_can_still_be_renewed() -> None:
    assert current_tenure(number(State.SUSPENDED)) == Tenure("s2", "cm", TENURE)


@pytest.mark.parametrize(
    ("found", "detail"),
    [
        (None, "the number has no subscriber"),
        (Number(NUMBER, "CN"), "the number has no subscriber"),
        (number(State.FROZEN), "the number is frozen"),
        (number(State.RELEASED), "the number is released"),
    ],
)
def test_only_a_number_in_service_has_a_renewal(found: Number | None, detail: str) -> None:
    error = refused("not-in-service", renewal_choice, found, [], ["bank"])
    assert error.detail == detail


CHOICE = RenewalChoice(NUMBER, TENURE, ("bank", "chat"), ("game", "shop"))


def test_the_chosen_platforms_are_asked_in_order() -> None:
    assert platforms_to_ask(CHOICE, ["chat", "bank"], False, []) == ["bank", "chat"]
    assert platforms_to_ask(CHOICE, ["shop"], False, []) == ["shop"], "an unlisted one may be"


def test_check_all_others_adds_every_other_platform() -> None:
    assert platforms_to_ask(CHOICE, ["bank"], True, []) == ["bank", "game", "shop"]
    assert platforms_to_ask(CHOICE, [], True, []) == ["game", "shop"]


def test_platforms_with_a_case_still_open_are_skipped() -> None:
    assert platforms_to_ask(CHOICE, ["bank", "chat"], True, ["chat", "game"]) == ["bank", "shop"]
    assert platforms_to_ask(CHOICE, ["bank"], False, ["bank"]) == []


def test_an_unknown_platform_is_an_error_naming_it() -> None:
    error = refused("unknown-platform", platforms_to_ask, CHOICE, ["bank", "zz", "aa"], True, [])
    assert error.detail == "not participating: aa, zz"


def test_choosing_nothing_is_an_error() -> None:
    refused("nothing-selected", platforms_to_ask, CHOICE, [], False, [])
    only_listed = RenewalChoice(NUMBER, TENURE, ("bank",), ())
    refused("nothing-selected", platforms_to_ask, only_listed, [], True, ["bank"])


# -- the previous owner's checklist ------------------------------------------------------


def owner_case(ref: str, case_id: str, platform: str = "bank", **changes: object) -> Case:
    case = make_case(
        K.UNBIND,
        Requester.PREVIOUS_OWNER,
        case_id=case_id,
        platform=platform,
        account_ref=ref,
    )
    for name, value in changes.items():
        setattr(case, name, value)
    return case


MINE = [
    binding("bank", TENURE + timedelta(days=1), "b-1", Tier.HIGH),
    binding("chat", TENURE + timedelta(days=2), "c-1", Tier.MEDIUM),
    binding("bank", TENURE - timedelta(days=1), "b-old", Tier.HIGH),  # someone else's
]


def checklist(bindings: list[Binding], cases: list[Case]) -> NumberChecklist:
    return number_checklist(NUMBER, TENURE, bindings, cases)


def test_the_checklist_lists_only_bindings_made_during_the_tenure() -> None:
    found = checklist(MINE, [])
    assert [(i.platform_id, i.account_ref, i.tier, i.status) for i in found.items] == [
        ("bank", "b-1", Tier.HIGH, "untouched"),
        ("chat", "c-1", Tier.MEDIUM, "untouched"),
    ]
    assert found.readiness == Readiness(2, 0, 0, 2, 1)
    assert not found.readiness.ready


def test_an_unresolved_high_binding_keeps_the_number_not_ready() -> None:
    opened = checklist(MINE, [owner_case("b-1", "c1")])
    assert [i.status for i in opened.items] == ["open", "untouched"]
    assert opened.readiness == Readiness(2, 0, 1, 1, 1)
    rejected = owner_case("b-1", "c1")
    rejected.answer(Out.REJECTED, "come to a branch", T0)
    after = checklist(MINE, [rejected])
    assert after.items[0].status == "rejected" and not after.items[0].resolved
    assert after.readiness == Readiness(2, 0, 0, 1, 1) and not after.readiness.ready


def test_an_answer_that_resolves_the_high_binding_makes_the_number_ready() -> None:
    answered = owner_case("b-1", "c1")
    answered.answer(Out.UNBOUND, None, T0)
    found = checklist(MINE, [answered])
    assert (found.items[0].status, found.items[0].resolved) == ("unbound", True)
    assert found.readiness == Readiness(2, 1, 0, 1, 0)
    assert found.readiness.ready, "a medium binding left does not hold the number"


def test_a_binding_removed_from_the_registry_is_resolved_and_stays_listed_by_its_case() -> None:
    rejected = owner_case("b-1", "c1")
    rejected.answer(Out.REJECTED, "later", T0)
    found = checklist(MINE[1:], [rejected])
    bank = found.items[0]
    assert (bank.account_ref, bank.binding, bank.tier, bank.resolved) == ("b-1", None, None, True)
    assert found.readiness == Readiness(2, 1, 0, 1, 0) and found.readiness.ready
    assert checklist(MINE[1:], []).readiness == Readiness(1, 0, 0, 1, 0)


def test_a_cancelled_case_counts_as_untouched() -> None:
    cancelled = owner_case("b-1", "c1")
    cancelled.cancel("number restored", T0)
    found = checklist(MINE, [cancelled])
    assert found.items[0].status == "untouched" and found.items[0].case is cancelled
    assert found.readiness == Readiness(2, 0, 0, 2, 1)


def test_the_latest_case_about_a_binding_counts() -> None:
    first = owner_case("b-1", "c1")
    first.answer(Out.REJECTED, "no", T0)
    second = owner_case("b-1", "c2")
    assert checklist(MINE, [second, first]).items[0].case is second


def test_other_requesters_and_tenures_cases_do_not_count() -> None:
    renewal = make_case(platform="bank", account_ref="b-1")  # a current owner's case
    older = owner_case("b-1", "c2", tenure_start=TENURE - timedelta(days=900))
    found = checklist(MINE, [renewal, older])
    assert [i.case for i in found.items] == [None, None]


# -- what the platform hears (signals) ---------------------------------------------------


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def test_a_new_owners_case_opened_carries_the_boundary_and_no_account() -> None:
    case = make_case()
    signal = case_signal_of(case, CaseOpened("c1", T0))
    assert signal.event_type == CASE_OPENED
    assert signal.payload == {
        "case_id": "c1",
        "kind": "unbind",
        "deadline": ts(T0 + timedelta(hours=72)),
        "requester": "current_owner",
        "bound_before": ts(TENURE),
    }
    assert "account_ref" not in signal.payload


def test_a_previous_owners_migrate_case_names_the_account_and_the_new_number() -> None:
    case = make_case(K.MIGRATE, Requester.PREVIOUS_OWNER, account_ref="b-1")
    signal = case_signal_of(case, CaseOpened("c1", T0))
    assert signal.payload == {
        "case_id": "c1",
        "kind": "migrate",
        "deadline": ts(T0 + timedelta(hours=72)),
        "requester": "previous_owner",
        "account_ref": "b-1",
        "migrate_to": {"format": "phone_number", "phone_number": OTHER},
    }
    assert signal.payload["migrate_to"] == phone_subject(OTHER)


def test_an_escalation_is_a_reminder_with_how_overdue() -> None:
    case = make_case(category=Category.LENDING)
    event = case.escalate(case.deadline + timedelta(minutes=5, seconds=7))
    signal = case_signal_of(case, event)
    assert signal.event_type == CASE_REMINDER
    assert signal.payload == {
        "case_id": "c1",
        "kind": "unbind",
        "deadline": ts(T0 + timedelta(hours=24)),
        "overdue_seconds": 307,
    }


def test_a_cancellation_says_why() -> None:
    case = make_case()
    signal = case_signal_of(case, case.cancel("number restored", T0 + HOUR))
    assert signal.event_type == CASE_CANCELLED
    assert signal.payload["reason"] == "number restored"
    assert signal.occurred_at == T0 + HOUR


def test_an_answer_makes_no_signal() -> None:
    case = make_case()
    assert case_signal(case, case.answer(Out.UNBOUND, None, T0), "log:1") is None


def case_signal_of(case: Case, event: CaseEvent) -> Signal:
    """The signal of a case event, checked to go to the case's platform only."""
    signal = case_signal(case, event, "log:42")
    assert isinstance(signal, Signal)
    assert (signal.platform_id, signal.stream_id) == (case.platform_id, None)
    assert signal.subject == {"format": "phone_number", "phone_number": NUMBER}
    assert (signal.txn, signal.occurred_at) == ("log:42", event.at)
    return signal


# -- what the public log records ----------------------------------------------------------


def all_events() -> list[tuple[Case, CaseEvent]]:
    opened = make_case(K.MIGRATE, Requester.PREVIOUS_OWNER, account_ref="b-1")
    answered = make_case(K.MIGRATE, Requester.PREVIOUS_OWNER, account_ref="b-1")
    rejection = answered.answer(Out.REJECTED, "Secret reason: holder is 王小明", T0 + 80 * HOUR)
    escalated, cancelled = make_case(), make_case()
    return [
        (opened, CaseOpened("c1", T0)),
        (answered, rejection),
        (escalated, escalated.escalate(T0 + 73 * HOUR)),
        (cancelled, cancelled.cancel("number restored", T0 + HOUR)),
    ]


@pytest.mark.parametrize(("case", "event"), all_events())
def test_a_log_entry_never_holds_a_number_nor_prose(case: Case, event: CaseEvent) -> None:
    raw = case_entry(KEY, case, event, T0 + 100 * HOUR)
    for secret in (NUMBER, NUMBER[1:], NUMBER[3:], OTHER[3:], "Secret reason", "王小明"):
        assert secret.encode() not in raw, secret
    entry = json.loads(raw)
    assert entry["number"] == pseudonym(KEY, NUMBER)
    assert entry["case"] == "c1" and entry["type"] == "case_event"
    assert "reason" not in entry and "migrate_to" not in entry


@pytest.mark.parametrize(("case", "event"), all_events())
def test_a_case_entry_is_about_its_platform_only(case: Case, event: CaseEvent) -> None:
    assert parties(case_entry(KEY, case, event, T0)) == Parties(platform="chat")


def test_a_freeze_reminder_entry_is_about_no_client() -> None:
    entry = freeze_reminder_entry(KEY, NUMBER, T0, "first", "sms", T0 + HOUR)
    assert parties(entry) == Parties()


def test_a_log_entry_records_the_answer_and_whether_it_was_late() -> None:
    _, (answered, rejection), _, _ = all_events()
    entry = json.loads(case_entry(KEY, answered, rejection, T0 + 100 * HOUR))
    assert entry == {
        "v": 1,
        "type": "case_event",
        "event": "answered",
        "case": "c1",
        "kind": "migrate",
        "requester": "previous_owner",
        "platform": "chat",
        "number": pseudonym(KEY, NUMBER),
        "deadline": "2024-06-04T12:00:00Z",
        "at": "2024-06-04T20:00:00Z",
        "recorded_at": "2024-06-05T16:00:00Z",
        "outcome": "rejected",
        "late": True,
    }
    assert [json.loads(case_entry(KEY, c, e, T0))["event"] for c, e in all_events()] == [
        "opened",
        "answered",
        "escalated",
        "cancelled",
    ]

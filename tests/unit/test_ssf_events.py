"""Which lifecycle events become signals, and the SETs (RFC 8417, SSF 1.0 §4) they make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.domain.lifecycle import (
    NumberActivated,
    NumberCancelled,
    NumberEvent,
    NumberPorted,
    NumberReleased,
    NumberRestored,
    NumberResumed,
    NumberSuspended,
    Tenure,
)
from handover.domain.ssf.events import (
    ALWAYS_DELIVERED,
    EVENTS_SUPPORTED,
    IDENTIFIER_RECYCLED,
    NUMBER_CANCELLED,
    NUMBER_PORTED,
    NUMBER_RESTORED,
    STREAM_UPDATED,
    VERIFICATION,
    Signal,
    phone_subject,
    seq_of,
    set_claims,
    set_id,
    signal_for,
    stream_subject,
)

NUMBER = "+8613812345678"
AT = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
TENURE = Tenure("s2", "cm", AT)
SUBJECT = {"format": "phone_number", "phone_number": NUMBER}
stream_ids = st.text(min_size=1, max_size=40)
seqs = st.integers(min_value=0, max_value=10**18 - 1)


def test_a_recycled_number_is_an_identifier_recycled_signal() -> None:
    """An activation after an earlier tenure tells platforms the number changed hands."""
    signal = signal_for(NumberActivated(NUMBER, AT, "cm", TENURE, reassigned=True), "log:7")
    assert signal == Signal(
        IDENTIFIER_RECYCLED, SUBJECT, {"event_timestamp": int(AT.timestamp())}, AT, "log:7"
    )
    assert signal.stream_id is None and signal.platform_id is None


def test_a_first_activation_makes_no_signal() -> None:
    """A number's first subscriber displaces nobody, so platforms hear nothing."""
    assert signal_for(NumberActivated(NUMBER, AT, "cm", TENURE, reassigned=False), "t") is None


@pytest.mark.parametrize(
    "event",
    [
        NumberSuspended(NUMBER, AT, "cm"),
        NumberResumed(NUMBER, AT, "cm"),
        NumberReleased(NUMBER, AT, "cm", TENURE),
    ],
    ids=["suspended", "resumed", "released"],
)
def test_events_that_keep_the_holder_make_no_signal(event: NumberEvent) -> None:
    """Suspension, resumption and release say nothing about who holds the number."""
    assert signal_for(event, "t") is None


def test_a_cancellation_carries_the_end_of_the_freeze() -> None:
    """number-cancelled tells when the number may be released, as a date and a timestamp."""
    release = AT + timedelta(days=90)
    signal = signal_for(NumberCancelled(NUMBER, AT, "cm", release), "log:1")
    assert signal is not None
    assert (signal.event_type, signal.subject, signal.txn) == (NUMBER_CANCELLED, SUBJECT, "log:1")
    assert signal.payload == {
        "event_timestamp": int(AT.timestamp()),
        "earliest_release": "2024-05-30",
        "release_not_before": int(release.timestamp()),
    }


@pytest.mark.parametrize(
    ("event", "event_type"),
    [
        (NumberRestored(NUMBER, AT, "cm", AT), NUMBER_RESTORED),
        (NumberPorted(NUMBER, AT, "cm", "cu"), NUMBER_PORTED),
    ],
    ids=["restored", "ported"],
)
def test_restore_and_port_make_their_own_signals(event: NumberEvent, event_type: str) -> None:
    """Restored and ported numbers become signals with only the event time as payload."""
    signal = signal_for(event, "log:3")
    assert signal is not None
    assert (signal.event_type, signal.subject) == (event_type, SUBJECT)
    assert signal.payload == {"event_timestamp": int(AT.timestamp())}
    assert signal.occurred_at == AT


@pytest.mark.parametrize("bad", ["8613812345678", "+0123", "+1", "+86 138", "+1234567890123456"])
def test_subjects_are_strict_e164(bad: str) -> None:
    """A phone_number subject identifier is built only from a strict E.164 number."""
    with pytest.raises(ValueError, match=r"E\.164"):
        phone_subject(bad)


def test_stream_level_events_name_the_stream_as_an_opaque_subject() -> None:
    """Verification and stream-updated events are about the stream itself."""
    assert stream_subject("abc") == {"format": "opaque", "id": "abc"}


def test_stream_level_types_are_supported_and_always_delivered() -> None:
    """Verification and stream-updated are advertised and reach every stream unasked."""
    assert {VERIFICATION, STREAM_UPDATED} == ALWAYS_DELIVERED
    assert set(EVENTS_SUPPORTED) >= ALWAYS_DELIVERED
    assert len(set(EVENTS_SUPPORTED)) == len(EVENTS_SUPPORTED)


# -- SET ids --------------------------------------------------------------------------


def test_a_set_id_is_stable_and_differs_per_stream_and_position() -> None:
    """Retransmissions reuse the jti; other streams and positions get other jtis."""
    assert set_id("s1", 5) == set_id("s1", 5)
    assert set_id("s1", 5).startswith("5-")
    assert len({set_id("s1", 5), set_id("s2", 5), set_id("s1", 6)}) == 3


@given(stream_ids, seqs)
def test_seq_of_reads_back_every_set_id(stream_id: str, seq: int) -> None:
    """seq_of inverts set_id for any stream and any outbox position."""
    assert seq_of(stream_id, set_id(stream_id, seq)) == seq


@given(stream_ids, stream_ids, seqs)
def test_seq_of_refuses_another_streams_jti(mine: str, theirs: str, seq: int) -> None:
    """A jti minted for another stream is never taken for one of ours."""
    if mine != theirs:
        assert seq_of(mine, set_id(theirs, seq)) is None


@given(stream_ids, st.text(max_size=60))
def test_seq_of_refuses_garbage(stream_id: str, jti: str) -> None:
    """Arbitrary strings name no outbox position unless they are exactly our jti."""
    seq = seq_of(stream_id, jti)
    assert seq is None or set_id(stream_id, seq) == jti


@pytest.mark.parametrize(
    "jti",
    [
        "",
        "-",
        "5",
        "5-",
        "-5-abc",
        "x-abc",
        "\u0665-abc",
        "\u00b2",
        "\u00b2-abc",
        "1\u00b9-abc",
        "1" * 19 + "-abc",
        "05-abc",
    ],
)
def test_seq_of_refuses_malformed_jtis(jti: str) -> None:
    """Empty, signed, non-ASCII (even digit-like: ², which int() refuses), over-long or
    unbound heads are not ours, and never raise."""
    assert seq_of("s1", jti) is None


def test_seq_of_refuses_a_tampered_suffix() -> None:
    """Changing any character after the position breaks the binding to the stream."""
    jti = set_id("s1", 42)
    flipped = jti[:-1] + ("0" if jti[-1] != "0" else "1")
    assert seq_of("s1", flipped) is None
    assert seq_of("s1", jti + "0") is None


# -- SET claims -----------------------------------------------------------------------


def test_set_claims_have_one_event_and_no_sub_or_exp() -> None:
    """SSF §4.1: the subject is in sub_id, no exp, and exactly one event per SET."""
    signal = Signal(IDENTIFIER_RECYCLED, SUBJECT, {"event_timestamp": 1}, AT, "log:9", seq=17)
    now = AT + timedelta(minutes=5)
    claims = set_claims(signal, "s1", "https://tx.example", "https://tx.example/p/acme", now)
    body = claims.as_dict()
    assert set(body) == {"iss", "aud", "jti", "iat", "txn", "sub_id", "events"}
    assert "sub" not in body and "exp" not in body
    assert body["events"] == {IDENTIFIER_RECYCLED: {"event_timestamp": 1}}
    assert body["jti"] == set_id("s1", 17)
    assert seq_of("s1", body["jti"]) == 17
    assert body["iat"] == int(now.timestamp())
    assert (body["iss"], body["aud"]) == ("https://tx.example", "https://tx.example/p/acme")
    assert (body["txn"], body["sub_id"]) == ("log:9", SUBJECT)


def test_the_same_signal_on_two_streams_gets_two_jtis() -> None:
    """One outbox entry fans out to per-stream SETs that receivers cannot confuse."""
    signal = Signal(NUMBER_PORTED, SUBJECT, {}, AT, "t", seq=3)
    first = set_claims(signal, "a", "iss", "aud", AT)
    second = set_claims(signal, "b", "iss", "aud", AT)
    assert first.jti != second.jti
    assert first.events == second.events

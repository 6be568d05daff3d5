"""People: a carrier's linked subscriber refs, and which tenures are a person's numbers."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.domain.lifecycle import Number, State, Tenure
from handover.domain.people import (
    MAX_LINKS,
    held_numbers,
    holder_of,
    link_pair,
    parse_links,
    same_person,
)

T1 = datetime(2019, 1, 1, tzinfo=UTC)
T2 = datetime(2024, 7, 1, tzinfo=UTC)


def neighbours_in(links: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    def neighbours(refs: Collection[str]) -> list[tuple[str, str]]:
        return [pair for pair in links if set(pair) & set(refs)]

    return neighbours


def test_links_are_symmetric_and_transitive() -> None:
    links = [link_pair("S2", "S1"), link_pair("S1", "S0"), link_pair("X", "Y")]
    assert same_person("S0", neighbours_in(links)) == {"S0", "S1", "S2"}
    assert same_person("S2", neighbours_in(links)) == {"S0", "S1", "S2"}
    assert same_person("Z", neighbours_in(links)) == {"Z"}


@given(st.lists(st.tuples(st.sampled_from("ABCDEF"), st.sampled_from("ABCDEF")), max_size=10))
def test_every_ref_of_a_person_finds_the_same_person(pairs: list[tuple[str, str]]) -> None:
    links = [link_pair(a, b) for a, b in pairs if a != b]
    group = same_person("A", neighbours_in(links))
    for ref in group:
        assert same_person(ref, neighbours_in(links)) == group


def test_a_link_call_names_refs_and_never_the_subscriber_itself() -> None:
    assert parse_links(" S1 ", ["S0", "S0", "S9"]) == ("S1", ["S0", "S9"])
    for subscriber, same_as, says in [
        ("", ["S0"], "subscriber"),
        ("S1", [], "same_as"),
        ("S1", "S0", "same_as"),
        ("S1", ["S1"], "itself"),
        ("S1", ["S0", 7], r"same_as\[1\]"),
        ("S1", ["x" * 129], "128"),
        ("S1", [f"S{i}" for i in range(MAX_LINKS + 1)], "at most"),
    ]:
        with pytest.raises(ValueError, match=says):
            parse_links(subscriber, same_as)


def number(e164: str, state: State, tenure: Tenure) -> Number:
    return Number(e164, "CN", state, "cm", tenure, tenure.start)


def test_a_number_held_before_shows_no_state_and_a_current_one_its_own() -> None:
    old = Tenure("S0", "cm", T1, T2)
    mine = Tenure("S1", "cm", T2)
    numbers = {
        "+8613800138000": number("+8613800138000", State.ACTIVE, Tenure("S9", "cm", T2)),
        "+8613900139000": number("+8613900139000", State.FROZEN, mine),
    }
    held = held_numbers([("+8613800138000", old), ("+8613900139000", mine)], numbers)
    assert [(h.e164, h.state, h.current) for h in held] == [
        ("+8613900139000", State.FROZEN, True),
        ("+8613800138000", None, False),
    ]


def test_only_an_open_tenure_has_a_holder() -> None:
    tenure = Tenure("S0", "cm", T1)
    assert holder_of(number("+8613800138000", State.SUSPENDED, tenure)) is not None
    released = number("+8613800138000", State.RELEASED, Tenure("S0", "cm", T1, T2))
    assert holder_of(released) is None
    assert holder_of(None) is None

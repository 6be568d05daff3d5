"""A day of attack on one person's sign-in, simulated on both stores at a virtual clock.

The attacker knows the victim's number. Every minute, from one of 64 addresses, it asks
for a code (every tenth time with a forged device credential), then guesses the 6 digits
until the code refuses to be guessed at (5 wrong guesses burn them), and tries a random long
code. In the device scenario it also asks from the owner's own address every 2 minutes, so
that address is always at its hourly limit. Guesses are random; one that happens to equal a
code the victim was texted (1 in 10^6 a guess) is replaced, so that the run is
deterministic: what bounds the attacker's luck is asserted instead, at most 5 guesses at
each code's digits.

Meanwhile the owner signs in every 2 hours (12 times a day):

- **device**: with the device credential of an earlier sign-in: they ask for a code, which
  comes at once, and sign in with it on the first try;
- **new device**: with no credential, each time on a device never used before: they ask for
  a code and sign in with the latest text their phone received. Guaranteed: the first
  attempt with its 6 digits either signs in or is refused `code-burnt` (an outsider burnt
  them), and then its long code signs in. Never a wait, another refusal, or a third try.

Asserted: every owner sign-in succeeds without waiting; the attacker never signs in; texts
the attacker caused and the owner did not use are at most 5 (the anonymous backoff's bound
for any 24 hours); in the device scenario that is every text the attacker caused.

`pytest tests/integration/test_sign_in_attack.py -s` prints the figures.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handover.domain.freeze_policy import FreezePolicy
from handover.domain.sign_in import (
    LONG_CODE_ALPHABET,
    SESSION_TTL,
    CodeBurnt,
    SignInPolicy,
    SignInRefused,
    TooManyCodes,
    WrongCode,
)
from handover.services import reporting, sign_in
from handover.services.ports import UnitOfWorkFactory

KEY = b"attack-simulation-key"
VICTIM = "+8613800138000"
T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
MINUTES_A_DAY = 24 * 60
OWNER_MINUTES = [61 + 120 * i for i in range(12)]
OWNER_ADDRESS = "203.0.113.7"
ATTACKER_ADDRESSES = [f"198.51.100.{i}" for i in range(64)]
POLICY = SignInPolicy()


def _codes(text: str) -> tuple[str, str]:
    digits = re.search(r"\b(\d{6})\b", text)
    long_code = re.search(r"\b([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})\b", text)
    assert digits is not None and long_code is not None, text
    return digits.group(1), long_code.group(1)


class Phone:
    """The victim's phone: every text it received (a `MessageSender`)."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def send(self, recipient: str, text: str) -> None:
        assert recipient == VICTIM
        self.received.append(text)


@dataclass
class Day:
    """What happened, for the assertions and the printed figures."""

    scenario: str
    attacker_texts: int = 0
    attacker_texts_used: int = 0
    owner_texts: int = 0
    owner_attempts: int = 0
    owner_sign_ins: int = 0
    owner_long_codes: int = 0
    owner_refusals: list[str] = field(default_factory=list)
    attacker_asks: int = 0
    attacker_asks_refused: int = 0
    attacker_guesses: int = 0
    attacker_guesses_counted: int = 0
    attacker_sign_ins: int = 0
    most_counted_at_one_code: int = 0

    def figures(self) -> str:
        return (
            f"{self.scenario}: attacker-caused texts {self.attacker_texts} "
            f"(used by the owner {self.attacker_texts_used}, unused "
            f"{self.attacker_texts - self.attacker_texts_used}); owner's own texts "
            f"{self.owner_texts}; owner sign-ins {self.owner_sign_ins}/{self.owner_attempts} "
            f"(long code needed {self.owner_long_codes}); attacker asks {self.attacker_asks} "
            f"(refused {self.attacker_asks_refused}), guesses {self.attacker_guesses} "
            f"(counted {self.attacker_guesses_counted}, at most "
            f"{self.most_counted_at_one_code} at one code), attacker sign-ins "
            f"{self.attacker_sign_ins}"
        )


class Simulation:
    def __init__(self, uow_factory: UnitOfWorkFactory, scenario: str) -> None:
        self.uow_factory = uow_factory
        self.phone = Phone()
        self.day = Day(scenario)
        self.random = random.Random(20261201)
        self.used_texts: set[int] = set()  # indexes into the phone's texts
        self.caused_by: list[str] = []  # who asked for each text: "attacker" or "owner"

    def texts(self) -> list[str]:
        return self.phone.received

    def texted_codes(self) -> set[str]:
        return {_codes(text)[0] for text in self.texts()}

    def ask(self, at: datetime, address: str, device: str | None, by: str) -> int:
        """Ask for a code; how many texts it caused (0 or 1)."""
        before = len(self.texts())
        sign_in.request_code(
            self.uow_factory, self.phone, VICTIM, address, at, key=KEY, device=device, policy=POLICY
        )
        sent = len(self.texts()) - before
        self.caused_by += [by] * sent
        return sent

    def sign_in(self, at: datetime, code: str, address: str, device: str | None = None) -> Any:
        return sign_in.sign_in(
            self.uow_factory,
            VICTIM,
            code,
            address,
            at,
            key=KEY,
            device=device,
            policy=POLICY,
            ttl=SESSION_TTL,
        )

    # The attacker

    def attack(self, minute: int) -> None:
        at = T0 + timedelta(minutes=minute)
        address = ATTACKER_ADDRESSES[minute % len(ATTACKER_ADDRESSES)]
        forged = (
            "hod_" + "".join(self.random.choices("AZaz09_-", k=43)) if minute % 10 == 0 else None
        )
        self._attacker_asks(at, address, forged)
        if self.day.scenario == "device" and minute % 2 == 0:
            self._attacker_asks(at + timedelta(seconds=1), OWNER_ADDRESS, None)
        for second in range(2, 8):  # the digits, until they are burnt (or there is no code)
            guess = f"{self.random.randrange(10**6):06d}"
            while guess in self.texted_codes():
                guess = f"{self.random.randrange(10**6):06d}"
            if not self._attacker_guesses(at + timedelta(seconds=second), guess, address, forged):
                break
        long_guess = "".join(self.random.choices(LONG_CODE_ALPHABET, k=16))
        self._attacker_guesses(at + timedelta(seconds=9), long_guess, address, forged)

    def _attacker_asks(self, at: datetime, address: str, device: str | None) -> None:
        self.day.attacker_asks += 1
        try:
            self.day.attacker_texts += self.ask(at, address, device, "attacker")
        except TooManyCodes:
            self.day.attacker_asks_refused += 1

    def _attacker_guesses(self, at: datetime, code: str, address: str, device: str | None) -> bool:
        """One guess; whether guessing the digits again is any use."""
        self.day.attacker_guesses += 1
        try:
            self.sign_in(at, code, address, device)
        except WrongCode:
            self.day.attacker_guesses_counted += len(code) == 6
            return True
        except SignInRefused:
            return False
        self.day.attacker_sign_ins += 1
        return False

    # The owner

    def earlier_sign_in(self, at: datetime) -> str:
        """The owner signs in once, before the day: the device credential they keep."""
        assert self.ask(at, OWNER_ADDRESS, None, "owner") == 1
        device: str = self.sign_in(at, _codes(self.texts()[-1])[0], OWNER_ADDRESS).device
        self.phone, self.caused_by = Phone(), []  # count the day's texts only
        return device

    def owner_with_device(self, at: datetime, device: str) -> None:
        """Ask with the device credential, sign in with the code that comes: first try."""
        self.day.owner_attempts += 1
        sent = self.ask(at, OWNER_ADDRESS, device, "owner")  # never refused, never held back
        assert sent == 1, "the device's code did not come at once"
        self.day.owner_texts += 1
        self.used_texts.add(len(self.texts()) - 1)
        issued = self.sign_in(
            at + timedelta(seconds=20), _codes(self.texts()[-1])[0], OWNER_ADDRESS, device
        )
        assert issued.device == device
        self.day.owner_sign_ins += 1

    def owner_on_a_new_device(self, at: datetime) -> None:
        """Ask (no credential), then the latest text: its digits, else its long code."""
        self.day.owner_attempts += 1
        sent = self.ask(at, OWNER_ADDRESS, None, "owner")
        self.day.owner_texts += sent
        latest = len(self.texts()) - 1
        assert latest >= 0, "the phone has no text to use"
        digits, long_code = _codes(self.texts()[latest])
        try:
            self.sign_in(at + timedelta(seconds=20), digits, OWNER_ADDRESS)
        except CodeBurnt as burnt:
            self.day.owner_refusals.append(type(burnt).__name__)
            self.sign_in(at + timedelta(seconds=40), long_code, OWNER_ADDRESS)
            self.day.owner_long_codes += 1
        self.used_texts.add(latest)
        self.day.owner_sign_ins += 1

    def run(self, device: str | None) -> Day:
        owner_at = set(OWNER_MINUTES)
        for minute in range(MINUTES_A_DAY):
            self.attack(minute)
            if minute in owner_at:
                at = T0 + timedelta(minutes=minute, seconds=30)
                if device is not None:
                    self.owner_with_device(at, device)
                else:
                    self.owner_on_a_new_device(at)
        used = [self.caused_by[i] for i in self.used_texts]
        self.day.attacker_texts_used = used.count("attacker")
        with self.uow_factory() as uow:
            codes = uow.sign_in_codes.for_number(VICTIM, T0 - timedelta(days=2))
        self.day.most_counted_at_one_code = max(c.failures for c in codes)
        return self.day


@pytest.fixture
def victim(uow_factory: UnitOfWorkFactory, carriers: tuple[str, str]) -> UnitOfWorkFactory:
    event = {
        "event_id": "a1",
        "number": VICTIM,
        "event": "activated",
        "occurred_at": "2024-07-01",
        "subscriber": "S1",
    }
    result = reporting.report_events(
        uow_factory, "cm", [event], region="CN", now=T0, policy=FreezePolicy()
    )
    assert result.accepted == 1
    return uow_factory


@pytest.mark.parametrize("scenario", ["device", "new device"])
def test_a_day_of_attack_neither_locks_the_owner_out_nor_floods_their_phone(
    victim: UnitOfWorkFactory, scenario: str, store_url: str
) -> None:
    simulation = Simulation(victim, scenario)
    device = simulation.earlier_sign_in(T0 - timedelta(days=1)) if scenario == "device" else None
    day = simulation.run(device)
    print(f"\n{store_url.split(':')[0]} {day.figures()}")

    assert day.owner_sign_ins == day.owner_attempts == len(OWNER_MINUTES)
    assert day.attacker_sign_ins == 0
    assert day.most_counted_at_one_code <= POLICY.max_failures
    unused = day.attacker_texts - day.attacker_texts_used
    assert unused <= 5
    assert len(simulation.texts()) == day.attacker_texts + day.owner_texts
    if scenario == "device":
        assert day.attacker_texts <= 5 and day.attacker_texts_used == 0  # theirs came at once
        assert day.owner_texts == len(OWNER_MINUTES)
        assert day.attacker_asks_refused > 0  # the owner's address was at its limit
    else:
        assert set(day.owner_refusals) <= {"CodeBurnt"}
        # Each text the owner needed was one the attacker had caused, or their own.
        assert day.attacker_texts + day.owner_texts <= 5 + len(OWNER_MINUTES)

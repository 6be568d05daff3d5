"""A person signs in with a one-time SMS code and gets a session (rules: `domain.sign_in`).

Asking for a code answers the same way whether or not Handover knows the number: a code
is stored (and counted against the limits) either way, and only a number in service gets
it. The code goes straight through the SMS sender after commit, since the person is
waiting; the API defers the send until its answer is out, so that the gateway's latency
does not tell which numbers are known either. A sender failure is logged and the answer
stays the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from handover.domain.lifecycle import IN_SERVICE, State
from handover.domain.message_texts import language_for, render
from handover.domain.numbers import parse_number
from handover.domain.people import Holder, holder_of
from handover.domain.rejections import Rejected
from handover.domain.sign_in import (
    NoCodeWaiting,
    Session,
    SignInPolicy,
    SignInRefused,
    WrongCode,
    admit_request,
    check_code,
    issue_code,
    looks_like_session_token,
    new_session_token,
    token_hash,
)
from handover.services.people import holder
from handover.services.ports import MessageSender, SendFailed, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


class MalformedNumber(SignInRefused):
    pass


class NotSignedIn(Exception):
    """No session: the token is unknown, expired, signed out, or the number changed hands."""


@dataclass(frozen=True, slots=True)
class IssuedSession:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SubscriberSession:
    """The signed-in person: the number they proved, and its tenure as it stands now.

    `carrier` and `subscriber` are the tenure's carrier-scoped pseudonym for the person;
    `tenure_start` is the boundary of a renewal (nothing bound after it is touched).
    """

    e164: str
    carrier: str
    subscriber: str
    tenure_start: datetime
    state: State
    expires_at: datetime


def _e164(number_text: str) -> tuple[str, str]:
    try:
        number = parse_number(number_text)
    except Rejected as exc:
        raise MalformedNumber(exc.detail) from None
    return number.e164, number.region


def _lock_holder(uow: UnitOfWork, e164: str) -> Holder | None:
    """The holder of a number in service, with the number locked until the transaction
    ends: concurrent attempts on one number queue, so the limits count every one of them
    (on PostgreSQL a snapshot read would let parallel guesses all pass the lockout).
    Unknown numbers have nothing to lock, but they never get an SMS nor a session."""
    found = holder_of(uow.numbers.lock({e164}).get(e164))
    return found if found is not None and found.state in IN_SERVICE else None


def request_code(
    uow_factory: UnitOfWorkFactory,
    sender: MessageSender,
    number_text: str,
    client_address: str,
    now: datetime,
    *,
    key: bytes,
    policy: SignInPolicy = SignInPolicy(),
    defer: Callable[[Callable[[], None]], object] | None = None,
) -> None:
    """Send a sign-in code to a number in service; raise `TooManyCodes` or `LockedOut`
    (with `retry_after`) when the limits say no, for known and unknown numbers alike.

    `defer`, when given, is handed the send to run later (after the HTTP answer)."""
    e164, region = _e164(number_text)
    with uow_factory() as uow:
        in_service = _lock_holder(uow, e164) is not None
        admit_request(
            uow.sign_in_codes.for_number(e164, now - policy.lookback),
            uow.sign_in_codes.asked_from(client_address, now - timedelta(hours=1)),
            now,
            policy,
        )
        stored, code = issue_code(key, e164, client_address, now, policy)
        uow.sign_in_codes.add(stored)
        uow.commit()
    if not in_service:
        return
    minutes = int(policy.code_ttl.total_seconds() // 60)
    text = render("sign_in_code", language_for(region), {"code": code, "minutes": minutes})

    def send() -> None:
        try:
            sender.send(e164, text)
        except SendFailed as exc:
            log.error("sign-in code not sent (code %s): %s", stored.id, exc)

    if defer is None:
        send()
    else:
        defer(send)


def sign_in(
    uow_factory: UnitOfWorkFactory,
    number_text: str,
    code: str,
    client_address: str,
    now: datetime,
    *,
    key: bytes,
    ttl: timedelta,
    policy: SignInPolicy = SignInPolicy(),
) -> IssuedSession:
    """A session of `ttl` for the holder of the number when `code` is its newest, unexpired,
    unused code; otherwise raise the `SignInRefused` that says why (a wrong code is
    counted)."""
    e164, _ = _e164(number_text)
    with uow_factory() as uow:
        found = _lock_holder(uow, e164)
        codes = uow.sign_in_codes.for_number(e164, now - policy.lookback)
        try:
            matched = check_code(key, codes, code, now, policy)
        except WrongCode:
            newest = max(codes, key=lambda c: c.created_at)
            uow.sign_in_codes.failed(newest.id, now)
            uow.commit()
            log.info("wrong sign-in code from %s", client_address)
            raise
        if not uow.sign_in_codes.use(matched.id, now):
            raise NoCodeWaiting("this code was already used; ask for a new one")
        if found is None:
            uow.commit()
            raise NoCodeWaiting("the number is not in service")
        token = new_session_token()
        expires_at = now + ttl
        uow.sessions.add(Session(token_hash(token), e164, found.tenure_start, now, expires_at))
        uow.commit()
    return IssuedSession(token, expires_at)


def session(uow_factory: UnitOfWorkFactory, token: str, now: datetime) -> SubscriberSession:
    """The live session of a token; `NotSignedIn` otherwise.

    A session is bound to the tenure signed in to: once the number has a new holder, the
    old holder's session opens nothing. A frozen number's tenure lasts until release.
    """
    if not looks_like_session_token(token):
        raise NotSignedIn("not a session token")
    with uow_factory() as uow:
        stored = uow.sessions.get(token_hash(token))
        if stored is None or not stored.live(now):
            raise NotSignedIn("the session has expired or was signed out")
        found = holder(uow, stored.e164, in_service=False)
    if found is None or found.tenure_start != stored.tenure_start:
        raise NotSignedIn("the number has changed hands since this session began")
    return SubscriberSession(
        stored.e164,
        found.carrier,
        found.subscriber,
        found.tenure_start,
        found.state,
        stored.expires_at,
    )


def sign_out(uow_factory: UnitOfWorkFactory, token: str, now: datetime) -> bool:
    """End the session (True when it was live)."""
    if not looks_like_session_token(token):
        return False
    with uow_factory() as uow:
        revoked = uow.sessions.revoke(token_hash(token), now)
        uow.commit()
    return revoked

"""A person signs in with a one-time SMS code and gets a session (rules: `domain.sign_in`).

Asking for a code answers the same way whether or not Handover knows the number: in the
anonymous lane a code is stored (and counted against the limits and the backoff) either
way, and only a number in service gets it; a device credential is valid only for a number
in service, so presenting one tells nothing either. The code goes straight through the
SMS sender after commit, since the person is waiting; the API defers the send until its
answer is out, so that the gateway's latency does not tell which numbers are known either.
A sender failure is logged and the answer stays the same.

Each request locks its client address, then the number; a sign-in locks the number. The
locks serialise what the limits count (concurrent requests from one address, guesses at one
code) on PostgreSQL as SQLite's single writer does, and are always taken in that order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from handover.domain.lifecycle import State
from handover.domain.message_texts import language_for, render
from handover.domain.numbers import parse_number
from handover.domain.people import Holder
from handover.domain.rejections import Rejected
from handover.domain.sign_in import (
    Device,
    Form,
    NoCodeWaiting,
    Session,
    SignInPolicy,
    SignInRefused,
    WrongCode,
    admit_address,
    admit_device_request,
    anonymous_expiry,
    check_code,
    format_long_code,
    in_lane,
    issue_code,
    looks_like_device_token,
    looks_like_session_token,
    new_device,
    new_session_token,
    parse_attempt,
    signed_in_with,
    token_hash,
    with_device_failure,
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
    #: The device credential to present next time (the one presented, renewed, or a new one).
    device: str
    device_expires_at: datetime


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


def _device(
    uow: UnitOfWork, token: str | None, e164: str, found: Holder | None, now: datetime
) -> Device | None:
    """The device credential `token`, when it is valid for the holder of `e164` (a number
    in service, the tenure it was issued for); else None, and the anonymous lane."""
    if token is None or not looks_like_device_token(token):
        return None
    device = uow.sign_in_devices.get(token_hash(token))
    tenure_start = found.tenure_start if found is not None else None
    return device if device is not None and device.opens(e164, tenure_start, now) else None


def request_code(
    uow_factory: UnitOfWorkFactory,
    sender: MessageSender,
    number_text: str,
    client_address: str,
    now: datetime,
    *,
    key: bytes,
    device: str | None = None,
    policy: SignInPolicy = SignInPolicy(),
    defer: Callable[[Callable[[], None]], object] | None = None,
) -> None:
    """Text a sign-in code to a number in service, in the lane of `device` (a device
    credential) when it is valid for the number, else in the anonymous lane.

    The device lane raises `TooManyCodes` past the device's budget; the anonymous lane past
    the client address's, and otherwise sends nothing while the number's anonymous code is
    live (or the backoff holds), answering the same. Known and unknown numbers alike.
    `defer`, when given, is handed the send to run later (after the HTTP answer)."""
    e164, region = _e164(number_text)
    with uow_factory() as uow:
        uow.sign_in_codes.lock_address(client_address)
        uow.sign_in_codes.lock_number(e164)
        found = holder(uow, e164)
        trusted = _device(uow, device, e164, found, now)
        codes = uow.sign_in_codes.for_number(e164, now - policy.lookback)
        expires_at: datetime | None
        if trusted is not None:
            admit_device_request(in_lane(codes, trusted.id), now, policy)
            expires_at = now + policy.code_ttl
        else:
            hour_ago = now - timedelta(hours=1)
            admit_address(uow.sign_in_codes.asked_from(client_address, hour_ago), now, policy)
            uow.sign_in_codes.asked(client_address, now, forget_before=hour_ago)
            expires_at = anonymous_expiry(codes, now, policy)
        if expires_at is None:
            uow.commit()  # the ask counts; the live code's text is the one to use
            return
        issued = issue_code(
            key, e164, client_address, now, expires_at, trusted.id if trusted else None
        )
        uow.sign_in_codes.add(issued.stored)
        uow.commit()
    if found is None:
        return
    params = {
        "code": issued.code,
        "long_code": format_long_code(issued.long_code),
        "minutes": math.ceil((expires_at - now).total_seconds() / 60),
    }
    text = render("sign_in_code", language_for(region), params)

    def send() -> None:
        try:
            sender.send(e164, text)
        except SendFailed as exc:
            log.error("sign-in code not sent (code %s): %s", issued.stored.id, exc)

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
    device: str | None = None,
    ttl: timedelta,
    policy: SignInPolicy = SignInPolicy(),
) -> IssuedSession:
    """A session for the holder of the number when `code` (6 digits or the long code)
    matches the newest live code of its lane; otherwise raise the `SignInRefused` that says
    why (a wrong 6-digit code is counted).

    The lane is the device's when `device` is valid for the number and asked for a code
    lately, else the anonymous one. A success renews the device credential presented, or
    issues one."""
    e164, _ = _e164(number_text)
    attempt = parse_attempt(code)
    with uow_factory() as uow:
        uow.sign_in_codes.lock_number(e164)
        found = holder(uow, e164)
        trusted = _device(uow, device, e164, found, now)
        codes = uow.sign_in_codes.for_number(e164, now - policy.lookback)
        lane_device = trusted
        lane = in_lane(codes, trusted.id) if trusted is not None else []
        if not lane:
            lane_device, lane = None, in_lane(codes, None)
        try:
            matched = check_code(key, lane, attempt, now, policy)
        except WrongCode:
            if attempt.form is Form.DIGITS:
                uow.sign_in_codes.failed(lane[-1].id)
                if lane_device is not None:
                    uow.sign_in_devices.save(with_device_failure(lane_device, now, policy))
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
        if trusted is not None and device is not None:
            kept, device_token = signed_in_with(trusted, now, policy), device
            uow.sign_in_devices.save(kept)
        else:
            kept, device_token = new_device(e164, found.tenure_start, now, policy)
            uow.sign_in_devices.add(kept)
        uow.commit()
    return IssuedSession(token, expires_at, device_token, kept.expires_at)


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

"""The subscriber's API: sign in with an SMS code, "me and my numbers", and a contact.

People authenticate with a session (`SignedIn`): a `hos_` bearer token, or the
`handover_session` cookie this API sets at sign-in for the web pages. Sign-in also gives
the client a device credential (`hod_...`, the `handover_device` cookie or the
`Handover-Device` header), which asks for codes in a lane of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Cookie, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from handover.api.deps import SESSION_COOKIE, AppSettings, SignedIn, UowFactory, session_token
from handover.api.edge import Inbound
from handover.api.problems import Problem
from handover.domain import sign_in as rules
from handover.domain.contacts import Contact
from handover.domain.message_texts import LANGUAGES
from handover.domain.messages import Channel
from handover.services import people, sign_in

router = APIRouter(prefix="/v1/subscriber", tags=["subscriber"])


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


#: The cookie that carries a device credential; sent back to the sign-in routes only.
DEVICE_COOKIE = "handover_device"
DEVICE_HEADER = "Handover-Device"
_DEVICE_PATH = "/v1/subscriber/sign-in"


def _device_token(
    header: Annotated[
        str | None,
        Header(alias=DEVICE_HEADER, description="A device credential (hod_...) from a sign-in"),
    ] = None,
    cookie: Annotated[
        str | None, Cookie(alias=DEVICE_COOKIE, description="Set by a sign-in")
    ] = None,
) -> str | None:
    """The caller's device credential: the header, else the cookie. Anything that is not a
    valid credential for the number is ignored (the anonymous lane), never refused."""
    return header or cookie


DeviceToken = Annotated[str | None, Depends(_device_token)]


class CodeRequestIn(Inbound):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(max_length=32, examples=["+8613800138000"])


class CodeRequestedPublic(BaseModel):
    detail: str
    expires_in: int = Field(description="Seconds a new code stays valid, at least")


class SignInIn(Inbound):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(max_length=32, examples=["+8613800138000"])
    code: str = Field(
        max_length=32,
        examples=["123456"],
        description="The 6 digits, or the long code (ABCD-EFGH-JKMN-PQRS) from the same text",
    )


class SessionPublic(BaseModel):
    session: str = Field(description="A bearer token (hos_...); also set as a cookie")
    expires_at: datetime
    device: str = Field(
        description="A device credential (hod_...) to send with the next code request and "
        f"sign-in ({DEVICE_HEADER} header); also set as the {DEVICE_COOKIE} cookie"
    )
    device_expires_at: datetime


class HeldNumberPublic(BaseModel):
    number: str
    state: str | None = Field(description="The number's state while held; null once held no more")
    held_from: datetime
    held_to: datetime | None
    current: bool


class MePublic(BaseModel):
    number: str
    state: str
    tenure_start: datetime
    session_expires_at: datetime
    numbers: list[HeldNumberPublic] = Field(
        description="Every number the carrier attests this person holds or held"
    )


class ContactIn(Inbound):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(examples=["email"], description="sms or email")
    address: str = Field(max_length=254, examples=["li.na@example.com"])
    language: str = Field("zh-CN", examples=["zh-CN"], description=" or ".join(LANGUAGES))


class ContactPublic(BaseModel):
    channel: str
    address: str
    language: str
    updated_at: datetime


def _contact(contact: Contact) -> ContactPublic:
    return ContactPublic(
        channel=contact.channel.value,
        address=contact.address,
        language=contact.language,
        updated_at=contact.updated_at,
    )


@router.post("/sign-in/code", status_code=202, response_model=CodeRequestedPublic)
def request_code(
    body: CodeRequestIn, request: Request, background: BackgroundTasks, device: DeviceToken
) -> CodeRequestedPublic:
    """Send a one-time sign-in code by SMS. The answer is the same whether or not the
    number is in service (only one in service gets a code, sent once the answer is out).

    With a device credential valid for the number, the device gets a code of its own (429
    with Retry-After past 1 a minute and 5 an hour). Without one, a number has one live
    code at a time: while it lives nothing more is sent (the latest text is the one to
    use), and 429 with Retry-After past 20 requests an hour from the client address."""
    state = request.app.state
    policy = rules.SignInPolicy()
    sign_in.request_code(
        state.uow_factory,
        state.senders[Channel.SMS],
        body.number,
        _address(request),
        datetime.now(UTC),
        key=state.sign_in_key,
        device=device,
        policy=policy,
        defer=background.add_task,
    )
    return CodeRequestedPublic(
        detail="If this number is in service, a code is on its way by SMS, unless the "
        "latest one sent is still valid: then use that one.",
        expires_in=int(policy.code_ttl.total_seconds()),
    )


@router.post("/sign-in", response_model=SessionPublic)
def sign_in_with_code(
    body: SignInIn, request: Request, response: Response, settings: AppSettings, device: DeviceToken
) -> SessionPublic:
    """Exchange the newest code (its 6 digits or its long code) for a session (also set as
    an HttpOnly, SameSite=Lax cookie) and a device credential (the `handover_device`
    cookie, HttpOnly, SameSite=Strict, sent to the sign-in routes only). A code works once;
    5 wrong guesses at its digits burn them (401 code-burnt), not its long code."""
    ttl = timedelta(seconds=settings.session_ttl_seconds)
    now = datetime.now(UTC)
    issued = sign_in.sign_in(
        request.app.state.uow_factory,
        body.number,
        body.code,
        _address(request),
        now,
        key=request.app.state.sign_in_key,
        device=device,
        ttl=ttl,
    )
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=settings.session_ttl_seconds,
        path="/",
        secure=settings.public_url.startswith("https:"),
        httponly=True,
        samesite="lax",
    )
    response.set_cookie(
        DEVICE_COOKIE,
        issued.device,
        max_age=int((issued.device_expires_at - now).total_seconds()),
        path=_DEVICE_PATH,
        secure=settings.public_url.startswith("https:"),
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return SessionPublic(
        session=issued.token,
        expires_at=issued.expires_at,
        device=issued.device,
        device_expires_at=issued.device_expires_at,
    )


@router.post("/sign-out", status_code=204)
def sign_out(
    uow_factory: UowFactory, token: Annotated[str | None, Depends(session_token)]
) -> Response:
    """End the session (bearer token or cookie) and clear the cookie; always 204."""
    if token is not None:
        sign_in.sign_out(uow_factory, token, datetime.now(UTC))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/me", response_model=MePublic)
def me(person: SignedIn, uow_factory: UowFactory) -> MePublic:
    """The signed-in number, its tenure, and every number the same person holds or held
    (as its carrier attests through subscriber refs and links)."""
    held = people.my_numbers(uow_factory, person.e164)
    return MePublic(
        number=person.e164,
        state=person.state.value,
        tenure_start=person.tenure_start,
        session_expires_at=person.expires_at,
        numbers=[
            HeldNumberPublic(
                number=h.e164,
                state=h.state.value if h.state else None,
                held_from=h.start,
                held_to=h.end,
                current=h.current,
            )
            for h in held
        ],
    )


@router.put("/contact", response_model=ContactPublic)
def put_contact(body: ContactIn, person: SignedIn, uow_factory: UowFactory) -> ContactPublic:
    """Set the alternative contact (another number or an e-mail address) that reaches
    this person after their number is gone: freeze reminders, case news."""
    contact = people.set_contact(
        uow_factory,
        person.carrier,
        person.subscriber,
        body.channel,
        body.address,
        body.language,
        datetime.now(UTC),
    )
    return _contact(contact)


@router.get("/contact", response_model=ContactPublic)
def get_contact(person: SignedIn, uow_factory: UowFactory) -> ContactPublic:
    contact = people.contact(uow_factory, person.carrier, person.subscriber)
    if contact is None:
        raise Problem(404, "no-contact", "No alternative contact is set")
    return _contact(contact)


@router.delete("/contact", status_code=204)
def delete_contact(person: SignedIn, uow_factory: UowFactory) -> Response:
    people.remove_contact(uow_factory, person.carrier, person.subscriber)
    return Response(status_code=204)

"""Event streams (SSF 1.0 §8.1): what one platform receives, how, and whether right now.

A `Stream` is an aggregate owned by one platform. Receivers may set only the
receiver-supplied properties; the transmitter-supplied ones (`stream_id`, `iss`, `aud`,
`events_supported`, `events_delivered`) may be echoed back but must then match. Every
illegal request raises `StreamError` with a `Refusal` code saying what is wrong with it;
the API answers each code with the status SSF §8 gives it (`api/problems.py`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from handover.domain.ssf.events import ALWAYS_DELIVERED, EVENTS_SUPPORTED


class DeliveryMethod(StrEnum):
    PUSH = "urn:ietf:rfc:8935"
    POLL = "urn:ietf:rfc:8936"


class StreamStatus(StrEnum):
    """Enabled streams deliver; paused ones hold events; disabled ones drop them."""

    ENABLED = "enabled"
    PAUSED = "paused"
    DISABLED = "disabled"


class SigningAlgorithm(StrEnum):
    ES256 = "ES256"
    RS256 = "RS256"


class Refusal(StrEnum):
    """What is wrong with a stream request (SSF 1.0 §8 has a status for each)."""

    #: Malformed, unknown or transmitter-supplied properties; a request of the wrong kind.
    INVALID_REQUEST = "invalid_request"
    #: The caller may not do this (not a registered platform).
    FORBIDDEN = "forbidden"
    #: No such stream, or not the caller's (the two are not told apart).
    NOT_FOUND = "not_found"
    #: The platform already holds as many streams as it may.
    TOO_MANY_STREAMS = "too_many_streams"
    #: Asked again sooner than the stream allows (verification).
    TOO_SOON = "too_soon"


class StreamError(ValueError):
    """A stream request SSF §8 refuses: `code` says what is wrong, `detail` says why."""

    def __init__(self, code: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


RECEIVER_SUPPLIED = frozenset(
    {"events_requested", "delivery", "description", "signing_alg", "min_verification_interval"}
)
TRANSMITTER_SUPPLIED = frozenset(
    {"stream_id", "iss", "aud", "events_supported", "events_delivered", "inactivity_timeout"}
)
#: Seconds a receiver must wait between verification requests (SSF §8.1.4.2).
MIN_VERIFICATION_INTERVAL = 10
MAX_DESCRIPTION = 500
MAX_AUTHORIZATION = 2048
MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class Delivery:
    method: DeliveryMethod
    #: The receiver's push endpoint, or (poll) the URL Handover serves the stream at.
    endpoint_url: str | None = None
    #: Sent as `Authorization` with every push (SSF §8.1.1); never shown back in full.
    authorization_header: str | None = None


@dataclass(frozen=True, slots=True)
class Stream:
    stream_id: str
    platform_id: str
    audience: str
    delivery: Delivery
    events_requested: tuple[str, ...]
    description: str | None
    signing_alg: SigningAlgorithm
    status: StreamStatus
    status_reason: str | None
    created_at: datetime
    updated_at: datetime
    min_verification_interval: int = MIN_VERIFICATION_INTERVAL
    last_verification_at: datetime | None = None

    @property
    def events_delivered(self) -> tuple[str, ...]:
        """Requested types Handover supports, in its own order (SSF §8.1.1)."""
        requested = set(self.events_requested)
        return tuple(uri for uri in EVENTS_SUPPORTED if uri in requested)

    def wants(self, event_type: str) -> bool:
        return event_type in ALWAYS_DELIVERED or event_type in self.events_requested

    def with_status(self, status: StreamStatus, reason: str | None, now: datetime) -> Stream:
        return replace(self, status=status, status_reason=reason, updated_at=now)

    def verification_requested(self, now: datetime) -> Stream:
        """Record a receiver's verification request; `TOO_SOON` when it asks too often."""
        last = self.last_verification_at
        if last is not None and (now - last).total_seconds() < self.min_verification_interval:
            raise StreamError(
                Refusal.TOO_SOON,
                f"verification may be requested once per {self.min_verification_interval} s",
            )
        return replace(self, last_verification_at=now)


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """The receiver-supplied properties of a create, update or replace request."""

    delivery: Delivery | None = None
    events_requested: tuple[str, ...] | None = None
    description: str | None = None
    signing_alg: SigningAlgorithm | None = None
    min_verification_interval: int | None = None
    present: frozenset[str] = frozenset()


def parse_request(body: Any, *, allow_http: bool, allow_private: bool = False) -> StreamRequest:
    """Validate a stream configuration body; `INVALID_REQUEST` for anything malformed or
    unknown."""
    if not isinstance(body, Mapping):
        raise StreamError(Refusal.INVALID_REQUEST, "the body must be a JSON object")
    unknown = set(body) - RECEIVER_SUPPLIED - TRANSMITTER_SUPPLIED
    if unknown:
        raise StreamError(
            Refusal.INVALID_REQUEST, f"unknown stream properties: {', '.join(sorted(unknown))}"
        )
    delivery = (
        _delivery(body["delivery"], allow_http, allow_private) if "delivery" in body else None
    )
    events = _events(body["events_requested"]) if "events_requested" in body else None
    return StreamRequest(
        delivery=delivery,
        events_requested=events,
        description=_description(body.get("description")),
        signing_alg=_algorithm(body["signing_alg"]) if "signing_alg" in body else None,
        min_verification_interval=(
            _interval(body["min_verification_interval"])
            if "min_verification_interval" in body
            else None
        ),
        present=frozenset(body) & RECEIVER_SUPPLIED,
    )


def check_echoed(body: Mapping[str, Any], stream: Stream, issuer: str) -> None:
    """Transmitter-supplied properties a receiver sends back must equal ours."""
    ours: dict[str, Any] = {
        "stream_id": stream.stream_id,
        "iss": issuer,
        "aud": stream.audience,
        "events_supported": list(EVENTS_SUPPORTED),
        "events_delivered": list(stream.events_delivered),
    }
    for name, value in ours.items():
        if name in body and body[name] != value:
            raise StreamError(
                Refusal.INVALID_REQUEST, f"{name} is set by the transmitter and cannot be changed"
            )


def new_stream(
    request: StreamRequest,
    stream_id: str,
    platform_id: str,
    audience: str,
    poll_url: str,
    now: datetime,
) -> Stream:
    """A stream from a create request; delivery defaults to poll when none is given."""
    delivery = request.delivery or Delivery(DeliveryMethod.POLL)
    return Stream(
        stream_id=stream_id,
        platform_id=platform_id,
        audience=audience,
        delivery=_served(delivery, poll_url),
        events_requested=request.events_requested or (),
        description=request.description,
        signing_alg=request.signing_alg or SigningAlgorithm.ES256,
        status=StreamStatus.ENABLED,
        status_reason=None,
        created_at=now,
        updated_at=now,
        min_verification_interval=(request.min_verification_interval or MIN_VERIFICATION_INTERVAL),
    )


def updated(stream: Stream, request: StreamRequest, poll_url: str, now: datetime) -> Stream:
    """PATCH: only the properties present change."""
    return replace(
        stream,
        delivery=_served(request.delivery, poll_url) if request.delivery else stream.delivery,
        events_requested=(
            request.events_requested
            if request.events_requested is not None
            else stream.events_requested
        ),
        description=(
            request.description if "description" in request.present else stream.description
        ),
        signing_alg=request.signing_alg or stream.signing_alg,
        min_verification_interval=(
            request.min_verification_interval or stream.min_verification_interval
        ),
        updated_at=now,
    )


def replaced(stream: Stream, request: StreamRequest, poll_url: str, now: datetime) -> Stream:
    """PUT: every receiver-supplied property takes the request's value or its default."""
    if request.delivery is None:
        raise StreamError(Refusal.INVALID_REQUEST, "a replacement must give delivery")
    fresh = new_stream(
        request, stream.stream_id, stream.platform_id, stream.audience, poll_url, now
    )
    return replace(
        fresh,
        status=stream.status,
        status_reason=stream.status_reason,
        created_at=stream.created_at,
        last_verification_at=stream.last_verification_at,
    )


def parse_status(body: Any) -> tuple[StreamStatus, str | None]:
    if not isinstance(body, Mapping):
        raise StreamError(Refusal.INVALID_REQUEST, "the body must be a JSON object")
    try:
        status = StreamStatus(str(body.get("status")))
    except ValueError:
        raise StreamError(
            Refusal.INVALID_REQUEST, "status must be enabled, paused or disabled"
        ) from None
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_DESCRIPTION):
        raise StreamError(
            Refusal.INVALID_REQUEST,
            f"reason must be a string of at most {MAX_DESCRIPTION} characters",
        )
    return status, reason


def _served(delivery: Delivery, poll_url: str) -> Delivery:
    """Poll streams are served by Handover at `poll_url`; the receiver cannot choose it."""
    if delivery.method is DeliveryMethod.POLL:
        return Delivery(DeliveryMethod.POLL, poll_url)
    return delivery


def _delivery(value: Any, allow_http: bool, allow_private: bool) -> Delivery:
    if not isinstance(value, Mapping):
        raise StreamError(Refusal.INVALID_REQUEST, "delivery must be an object")
    unknown = set(value) - {"method", "endpoint_url", "authorization_header"}
    if unknown:
        raise StreamError(
            Refusal.INVALID_REQUEST, f"unknown delivery properties: {', '.join(sorted(unknown))}"
        )
    try:
        method = DeliveryMethod(str(value.get("method")))
    except ValueError:
        supported = ", ".join(method.value for method in DeliveryMethod)
        raise StreamError(
            Refusal.INVALID_REQUEST, f"delivery.method must be one of {supported}"
        ) from None
    if method is DeliveryMethod.POLL:
        if value.get("authorization_header") is not None:
            raise StreamError(
                Refusal.INVALID_REQUEST, "authorization_header applies to push delivery only"
            )
        return Delivery(method)
    url = _endpoint(value.get("endpoint_url"), allow_http, allow_private)
    authorization = value.get("authorization_header")
    if authorization is not None and (
        not isinstance(authorization, str)
        or not 0 < len(authorization) <= MAX_AUTHORIZATION
        or any(c in authorization for c in "\r\n")
    ):
        raise StreamError(Refusal.INVALID_REQUEST, "authorization_header must be one line of text")
    return Delivery(method, url, authorization)


def _endpoint(url: Any, allow_http: bool, allow_private: bool) -> str:
    """A push endpoint: https, or http only to a loopback host when `allow_http`; never an
    address inside a private network unless `allow_private` (Handover must not be made to
    POST into its own network). Names are checked again when they are resolved."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise StreamError(Refusal.INVALID_REQUEST, "push delivery needs endpoint_url")
    if any(not c.isprintable() or c.isspace() for c in url):
        raise StreamError(
            Refusal.INVALID_REQUEST, "endpoint_url must be an https URL without spaces or controls"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise StreamError(Refusal.INVALID_REQUEST, "endpoint_url has an invalid port") from None
    if parts.hostname and not allow_private and not (allow_http and _loopback(parts.hostname)):
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            literal = None
        if parts.hostname == "localhost" or (literal and internal_address(literal)):
            raise StreamError(
                Refusal.INVALID_REQUEST, "endpoint_url must not point into a private network"
            )
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and allow_http and _loopback(parts.hostname):
        return url
    raise StreamError(Refusal.INVALID_REQUEST, "endpoint_url must be an https URL")


#: IPv6 ranges that carry an IPv4 address in their last 32 bits: IPv4-compatible (::/96,
#: deprecated), IPv4-translated (::ffff:0:0:0/96, SIIT) and the well-known NAT64 prefix
#: (64:ff9b::/96, RFC 6052). A gateway on the path turns them into the IPv4 address.
_EMBEDS_IPV4_LOW32 = tuple(
    ipaddress.IPv6Network(net) for net in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
#: The local-use NAT64 prefix (RFC 8215): translated inside someone's network, never global.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def internal_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address a push must not reach in production: anything not globally routable
    (private, shared 100.64/10, loopback, link-local, reserved...) and multicast.

    An IPv6 address that embeds an IPv4 address (IPv4-mapped, -compatible, -translated,
    NAT64, 6to4, Teredo) is judged by the IPv4 address too: a translator on the way would
    deliver it there, so `64:ff9b::10.0.0.1` is as internal as `10.0.0.1`."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return True
        embedded = _embedded_ipv4(address)
        if embedded is not None and internal_address(embedded):
            return True
        if embedded is not None and address.ipv4_mapped is not None:
            return False  # judged as the IPv4 address it is
    return not address.is_global or address.is_multicast


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _EMBEDS_IPV4_LOW32):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _events(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(uri, str) for uri in value):
        raise StreamError(
            Refusal.INVALID_REQUEST, "events_requested must be a list of event-type URIs"
        )
    return tuple(dict.fromkeys(value))


def _description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise StreamError(
            Refusal.INVALID_REQUEST, f"description must be at most {MAX_DESCRIPTION} characters"
        )
    return value


def _algorithm(value: Any) -> SigningAlgorithm:
    try:
        return SigningAlgorithm(value)
    except ValueError:
        raise StreamError(Refusal.INVALID_REQUEST, "signing_alg must be ES256 or RS256") from None


def _interval(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 86_400:
        raise StreamError(
            Refusal.INVALID_REQUEST, "min_verification_interval must be 1 to 86400 seconds"
        )
    return max(value, MIN_VERIFICATION_INTERVAL)

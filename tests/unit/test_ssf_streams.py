"""The Stream aggregate and the rules of SSF 1.0 §8.1 stream requests, without I/O."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handover.domain.ssf.events import (
    EVENTS_SUPPORTED,
    IDENTIFIER_RECYCLED,
    NUMBER_CANCELLED,
    NUMBER_PORTED,
    STREAM_UPDATED,
    VERIFICATION,
)
from handover.domain.ssf.streams import (
    MIN_VERIFICATION_INTERVAL,
    Delivery,
    DeliveryMethod,
    Refusal,
    SigningAlgorithm,
    Stream,
    StreamError,
    StreamStatus,
    check_echoed,
    internal_address,
    new_stream,
    parse_request,
    parse_status,
    replaced,
    updated,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
ISSUER = "https://tx.example"
POLL_URL = "https://tx.example/ssf/poll/st1"
PUSH = {"method": DeliveryMethod.PUSH.value, "endpoint_url": "https://rx.example/events"}
POLL = {"method": DeliveryMethod.POLL.value}


def make(body: dict[str, Any] | None = None) -> Stream:
    request = parse_request(body or {}, allow_http=False)
    return new_stream(request, "st1", "acme", f"{ISSUER}/platforms/acme", POLL_URL, NOW)


INVALID = Refusal.INVALID_REQUEST


def refused(code: Refusal, body: Any, *, allow_http: bool = False) -> StreamError:
    with pytest.raises(StreamError) as caught:
        parse_request(body, allow_http=allow_http)
    assert caught.value.code is code
    return caught.value


# -- parse_request ----------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "x", 1, None])
def test_a_body_that_is_not_an_object_is_invalid(body: Any) -> None:
    """Only a JSON object configures a stream."""
    refused(INVALID, body)


def test_unknown_properties_are_invalid() -> None:
    """A property neither side defines is refused and named."""
    assert "colour" in refused(INVALID, {"colour": "red"}).detail
    assert "extra" in refused(INVALID, {"delivery": {**PUSH, "extra": 1}}).detail


@pytest.mark.parametrize(
    "delivery",
    [
        "urn:ietf:rfc:8935",
        {"method": "urn:ietf:rfc:9999"},
        {},
        {"method": None},
    ],
)
def test_a_bad_delivery_method_is_invalid(delivery: Any) -> None:
    """Delivery is an object whose method is push (RFC 8935) or poll (RFC 8936)."""
    refused(INVALID, {"delivery": delivery})


@pytest.mark.parametrize(
    "url",
    [None, "", "ftp://rx.example/x", "https://", "rx.example/events", "x" * 3000, 42],
)
def test_push_needs_an_https_endpoint(url: Any) -> None:
    """A push stream without a usable https endpoint is refused."""
    refused(INVALID, {"delivery": {"method": DeliveryMethod.PUSH.value, "endpoint_url": url}})


@pytest.mark.parametrize(
    "url",
    [
        "https://rx.example/events\nX-Injected: 1",
        "https://rx.example/\r\n",
        "https://rx.example/\x7f",
        "https://rx.example/\tevents",
        "https://rx.example/\x00",
    ],
)
def test_an_endpoint_with_control_characters_is_invalid(url: str) -> None:
    """httpx cannot send to such a URL: it raises InvalidURL, which stops the push worker."""
    refused(INVALID, {"delivery": {"method": DeliveryMethod.PUSH.value, "endpoint_url": url}})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/rx", "http://localhost/rx", "http://[::1]:8080/rx"]
)
def test_http_is_accepted_only_to_loopback_when_allowed(url: str) -> None:
    """Plain http is a development convenience: loopback hosts, and only when allowed."""
    body = {"delivery": {"method": DeliveryMethod.PUSH.value, "endpoint_url": url}}
    refused(INVALID, body, allow_http=False)
    request = parse_request(body, allow_http=True)
    assert request.delivery == Delivery(DeliveryMethod.PUSH, url)


@pytest.mark.parametrize(
    "url", ["http://rx.example/events", "http://10.0.0.1/rx", "http://localhost.evil.example/"]
)
def test_http_to_other_hosts_is_refused_even_when_allowed(url: str) -> None:
    """allow_http never lets SETs travel in clear text off the machine."""
    refused(
        INVALID,
        {"delivery": {"method": DeliveryMethod.PUSH.value, "endpoint_url": url}},
        allow_http=True,
    )


def test_an_https_push_endpoint_is_accepted() -> None:
    """https endpoints with an authorization header make a push delivery."""
    body = {"delivery": {**PUSH, "authorization_header": "Bearer abc"}}
    request = parse_request(body, allow_http=False)
    assert request.delivery == Delivery(DeliveryMethod.PUSH, PUSH["endpoint_url"], "Bearer abc")
    assert request.present == {"delivery"}


@pytest.mark.parametrize("header", ["Bearer a\r\nX-Evil: 1", "Bearer a\nb", "", 7, "x" * 2049])
def test_an_authorization_header_must_be_one_line_of_text(header: Any) -> None:
    """Header injection (CR/LF), empty, non-text and oversized values are refused."""
    refused(INVALID, {"delivery": {**PUSH, "authorization_header": header}})


def test_poll_delivery_takes_no_authorization_header() -> None:
    """The push secret has no meaning for a stream Handover serves itself."""
    refused(INVALID, {"delivery": {**POLL, "authorization_header": "Bearer x"}})


@pytest.mark.parametrize("events", ["urn:x", {"a": 1}, [1], [IDENTIFIER_RECYCLED, None]])
def test_events_requested_must_be_a_list_of_strings(events: Any) -> None:
    """events_requested is a JSON array of event-type URIs."""
    refused(INVALID, {"events_requested": events})


def test_events_requested_drops_repeats_in_order() -> None:
    """Repeated URIs are kept once, in the order asked."""
    request = parse_request(
        {"events_requested": [NUMBER_PORTED, IDENTIFIER_RECYCLED, NUMBER_PORTED]},
        allow_http=False,
    )
    assert request.events_requested == (NUMBER_PORTED, IDENTIFIER_RECYCLED)


@pytest.mark.parametrize("alg", ["HS256", "none", "es256", None, 256])
def test_only_es256_and_rs256_sign(alg: Any) -> None:
    """signing_alg is limited to the algorithms the transmitter holds keys for."""
    refused(INVALID, {"signing_alg": alg})


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_supported_signing_algorithms_are_accepted(alg: str) -> None:
    """ES256 and RS256 may be chosen per stream."""
    assert parse_request({"signing_alg": alg}, allow_http=False).signing_alg == alg


@pytest.mark.parametrize("value", [0, -1, 86_401, "30", True, 1.5])
def test_min_verification_interval_is_whole_seconds_in_range(value: Any) -> None:
    """Intervals are integers from 1 s to a day."""
    refused(INVALID, {"min_verification_interval": value})


def test_a_short_verification_interval_is_raised_to_the_minimum() -> None:
    """A receiver cannot ask to verify more often than the transmitter allows."""
    request = parse_request({"min_verification_interval": 1}, allow_http=False)
    assert request.min_verification_interval == MIN_VERIFICATION_INTERVAL


@pytest.mark.parametrize("description", ["x" * 501, 5, ["a"]])
def test_description_is_short_text(description: Any) -> None:
    """Descriptions are strings of at most 500 characters."""
    refused(INVALID, {"description": description})


def test_transmitter_supplied_properties_are_not_unknown() -> None:
    """A receiver may echo what the transmitter gave it; those are not receiver settings."""
    request = parse_request({"stream_id": "st1", "iss": ISSUER, "aud": "x"}, allow_http=False)
    assert request.present == frozenset()


# -- the aggregate --------------------------------------------------------------------


def test_a_new_stream_defaults_to_poll_es256_enabled() -> None:
    """Without delivery a stream is polled at Handover's URL, signed with ES256, enabled."""
    stream = make()
    assert stream.delivery == Delivery(DeliveryMethod.POLL, POLL_URL)
    assert stream.signing_alg is SigningAlgorithm.ES256
    assert stream.status is StreamStatus.ENABLED
    assert stream.events_requested == ()
    assert stream.min_verification_interval == MIN_VERIFICATION_INTERVAL
    assert (stream.created_at, stream.updated_at) == (NOW, NOW)


def test_a_poll_stream_is_served_at_handovers_url() -> None:
    """The receiver cannot choose where a poll stream is served."""
    stream = make({"delivery": {**POLL, "endpoint_url": "https://evil.example/"}})
    assert stream.delivery.endpoint_url == POLL_URL


def test_events_delivered_is_requested_intersected_with_supported() -> None:
    """Unsupported requests are ignored; delivered types follow the transmitter's order."""
    stream = make({"events_requested": [NUMBER_PORTED, "urn:unknown", IDENTIFIER_RECYCLED]})
    assert stream.events_delivered == (IDENTIFIER_RECYCLED, NUMBER_PORTED)


@given(st.lists(st.one_of(st.sampled_from(EVENTS_SUPPORTED), st.text(max_size=20)), max_size=12))
def test_events_delivered_is_always_the_supported_subset(requested: list[str]) -> None:
    """For any request, delivered == requested ∩ supported, in supported order."""
    stream = make({"events_requested": requested})
    assert set(stream.events_delivered) == set(requested) & set(EVENTS_SUPPORTED)
    order = list(EVENTS_SUPPORTED)
    assert list(stream.events_delivered) == sorted(stream.events_delivered, key=order.index)


def test_stream_level_events_are_wanted_without_being_requested() -> None:
    """Verification and stream-updated reach every stream; others only when requested."""
    stream = make({"events_requested": [IDENTIFIER_RECYCLED]})
    assert stream.wants(VERIFICATION) and stream.wants(STREAM_UPDATED)
    assert stream.wants(IDENTIFIER_RECYCLED)
    assert not stream.wants(NUMBER_CANCELLED)


# -- echoed transmitter properties ----------------------------------------------------


def test_echoing_the_transmitters_values_is_accepted() -> None:
    """A receiver may send back the configuration it read."""
    stream = make({"events_requested": [IDENTIFIER_RECYCLED, "urn:unknown"]})
    check_echoed(
        {
            "stream_id": stream.stream_id,
            "iss": ISSUER,
            "aud": stream.audience,
            "events_supported": list(EVENTS_SUPPORTED),
            "events_delivered": [IDENTIFIER_RECYCLED],
        },
        stream,
        ISSUER,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("stream_id", "other"),
        ("iss", "https://evil.example"),
        ("aud", "https://evil.example"),
        ("events_supported", [IDENTIFIER_RECYCLED]),
        ("events_delivered", [NUMBER_PORTED]),
    ],
)
def test_changing_a_transmitter_supplied_property_is_invalid(name: str, value: Any) -> None:
    """Transmitter-supplied properties may be echoed but never changed."""
    stream = make({"events_requested": [IDENTIFIER_RECYCLED]})
    with pytest.raises(StreamError) as caught:
        check_echoed({name: value}, stream, ISSUER)
    assert caught.value.code is INVALID
    assert name in caught.value.detail


# -- PATCH and PUT --------------------------------------------------------------------


def test_patch_changes_only_the_properties_present() -> None:
    """An update leaves every absent property as it was."""
    stream = make(
        {
            "delivery": PUSH,
            "events_requested": [IDENTIFIER_RECYCLED],
            "description": "keep",
            "signing_alg": "RS256",
            "min_verification_interval": 60,
        }
    )
    request = parse_request({"events_requested": [NUMBER_PORTED]}, allow_http=False)
    changed = updated(stream, request, POLL_URL, LATER)
    assert changed.events_requested == (NUMBER_PORTED,)
    assert changed.delivery == stream.delivery
    assert changed.description == "keep"
    assert changed.signing_alg is SigningAlgorithm.RS256
    assert changed.min_verification_interval == 60
    assert (changed.created_at, changed.updated_at) == (NOW, LATER)


def test_patch_can_clear_the_description_and_switch_to_poll() -> None:
    """A present null clears the description; switching to poll serves it at our URL."""
    stream = make({"delivery": PUSH, "description": "old"})
    request = parse_request({"description": None, "delivery": POLL}, allow_http=False)
    changed = updated(stream, request, POLL_URL, LATER)
    assert changed.description is None
    assert changed.delivery == Delivery(DeliveryMethod.POLL, POLL_URL)


def test_patch_keeps_status_and_identity() -> None:
    """An update never touches the stream's id, owner, audience or status."""
    stream = make().with_status(StreamStatus.PAUSED, "maintenance", NOW)
    changed = updated(stream, parse_request({"description": "x"}, allow_http=False), "", LATER)
    assert (changed.stream_id, changed.platform_id, changed.audience) == (
        stream.stream_id,
        stream.platform_id,
        stream.audience,
    )
    assert (changed.status, changed.status_reason) == (StreamStatus.PAUSED, "maintenance")


def test_put_resets_absent_properties_to_defaults_but_keeps_status() -> None:
    """A replacement is the request plus defaults; status, creation and verification stay."""
    stream = (
        make(
            {
                "delivery": PUSH,
                "events_requested": [IDENTIFIER_RECYCLED],
                "description": "old",
                "signing_alg": "RS256",
                "min_verification_interval": 60,
            }
        )
        .with_status(StreamStatus.PAUSED, "why", NOW)
        .verification_requested(NOW)
    )
    request = parse_request({"delivery": POLL}, allow_http=False)
    fresh = replaced(stream, request, POLL_URL, LATER)
    assert fresh.delivery == Delivery(DeliveryMethod.POLL, POLL_URL)
    assert fresh.events_requested == ()
    assert fresh.description is None
    assert fresh.signing_alg is SigningAlgorithm.ES256
    assert fresh.min_verification_interval == MIN_VERIFICATION_INTERVAL
    assert (fresh.status, fresh.status_reason) == (StreamStatus.PAUSED, "why")
    assert (fresh.created_at, fresh.updated_at) == (NOW, LATER)
    assert fresh.last_verification_at == NOW
    assert (fresh.stream_id, fresh.audience) == (stream.stream_id, stream.audience)


def test_put_without_delivery_is_invalid() -> None:
    """A replacement must say how the stream is delivered."""
    with pytest.raises(StreamError) as caught:
        replaced(make(), parse_request({}, allow_http=False), POLL_URL, LATER)
    assert caught.value.code is INVALID


# -- verification and status ----------------------------------------------------------


def test_verification_is_rate_limited() -> None:
    """A second request inside the interval is too soon; after it, verification is allowed."""
    stream = make({"min_verification_interval": 30}).verification_requested(NOW)
    assert stream.last_verification_at == NOW
    with pytest.raises(StreamError) as caught:
        stream.verification_requested(NOW + timedelta(seconds=29))
    assert caught.value.code is Refusal.TOO_SOON
    again = stream.verification_requested(NOW + timedelta(seconds=30))
    assert again.last_verification_at == NOW + timedelta(seconds=30)


def test_the_first_verification_is_always_allowed() -> None:
    """A stream that never verified may do so at once."""
    assert make().verification_requested(NOW).last_verification_at == NOW


@pytest.mark.parametrize("status", list(StreamStatus))
def test_parse_status_accepts_the_three_statuses(status: StreamStatus) -> None:
    """enabled, paused and disabled, with an optional reason."""
    assert parse_status({"status": status.value, "reason": "r"}) == (status, "r")
    assert parse_status({"status": status.value}) == (status, None)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "on"},
        {"status": "ENABLED"},
        {"status": None},
        {"status": "enabled", "reason": 5},
        {"status": "enabled", "reason": "x" * 501},
        ["enabled"],
        "enabled",
    ],
)
def test_parse_status_refuses_anything_else(body: Any) -> None:
    """Unknown statuses, non-text or long reasons, and non-objects are invalid requests."""
    with pytest.raises(StreamError) as caught:
        parse_status(body)
    assert caught.value.code is INVALID


def test_with_status_records_reason_and_time() -> None:
    """A status change keeps the reason and moves updated_at."""
    stream = make().with_status(StreamStatus.DISABLED, "abuse", LATER)
    assert (stream.status, stream.status_reason, stream.updated_at) == (
        StreamStatus.DISABLED,
        "abuse",
        LATER,
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/ssf",
        "https://192.168.0.10/ssf",
        "https://169.254.169.254/latest",
        "https://[::1]/ssf",
        "https://[::ffff:10.0.0.1]/ssf",
        "https://localhost/ssf",
        "https://0.0.0.0/ssf",
    ],
)
def test_a_push_endpoint_inside_a_private_network_is_refused(url: str) -> None:
    body = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}}
    with pytest.raises(StreamError, match="private network") as refused:
        parse_request(body, allow_http=False)
    assert refused.value.code is INVALID
    request = parse_request(body, allow_http=False, allow_private=True)
    assert request.delivery is not None and request.delivery.endpoint_url == url


def test_documentation_addresses_are_internal_and_names_wait_for_resolution() -> None:
    url = "https://203.0.113.7/ssf"  # TEST-NET-3: documentation space, never a receiver
    body = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}}
    with pytest.raises(StreamError):
        parse_request(body, allow_http=False)
    named = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://p.example/s"}}
    assert parse_request(named, allow_http=False).delivery is not None


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::10.0.0.1",  # NAT64 (RFC 6052) to a private address
        "64:ff9b::169.254.169.254",  # NAT64 to the cloud metadata service
        "64:ff9b:1::8.8.8.8",  # local-use NAT64 (RFC 8215): someone's own network
        "2002:0a00:0001::1",  # 6to4 from 10.0.0.1
        "2002:7f00:0001::1",  # 6to4 from loopback
        "::10.0.0.1",  # IPv4-compatible (deprecated)
        "::ffff:0:10.0.0.1",  # IPv4-translated (SIIT)
        "::ffff:192.168.1.1",  # IPv4-mapped
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    ],
)
def test_ipv6_addresses_that_embed_an_internal_ipv4_address_are_internal(address: str) -> None:
    assert internal_address(ipaddress.ip_address(address))
    url = f"https://[{address}]/ssf"
    body = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}}
    with pytest.raises(StreamError, match="private network"):
        parse_request(body, allow_http=False)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2606:4700::1111", "64:ff9b::8.8.8.8", "2002:0808:0808::1", "::ffff:1.1.1.1"],
)
def test_public_addresses_embedded_or_not_are_not_internal(address: str) -> None:
    assert not internal_address(ipaddress.ip_address(address))

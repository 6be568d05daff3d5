"""Talking to the transmitter: OAuth client credentials, discovery and stream management
(SSF 1.0 §7 and §8).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"


class TransmitterError(Exception):
    """The transmitter answered with an error: `status` and its problem JSON (RFC 9457), if
    the body was JSON (an OAuth error body for the token endpoint).
    """

    def __init__(self, status: int, problem: Mapping[str, Any] | None, text: str = "") -> None:
        self.status = status
        self.problem = dict(problem) if problem is not None else None
        detail = ""
        if self.problem:
            detail = str(
                self.problem.get("detail")
                or self.problem.get("title")
                or self.problem.get("error_description")
                or self.problem.get("error")
                or ""
            )
        super().__init__(f"HTTP {status}: {detail or text[:200]}")

    @classmethod
    def from_response(cls, response: httpx.Response) -> TransmitterError:
        try:
            body = response.json()
        except ValueError:
            body = None
        return cls(response.status_code, body if isinstance(body, dict) else None, response.text)


class TokenSource(Protocol):
    def token(self) -> str:
        """A bearer access token, valid now."""
        ...

    def invalidate(self) -> None:
        """Drop the current token (the server refused it); the next `token()` gets another."""
        ...


class StaticToken:
    """A token obtained some other way."""

    def __init__(self, value: str) -> None:
        self.value = value

    def token(self) -> str:
        return self.value

    def invalidate(self) -> None:
        """Nothing to do: there is no other token to get."""


class ClientCredentials:
    """Access tokens from the OAuth 2.0 client credentials grant (RFC 6749 §4.4), reused until
    `leeway` seconds before they expire. Safe to share between threads.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        http: httpx.Client | None = None,
        leeway: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self._http = http or httpx.Client(timeout=10.0)
        self._leeway = leeway
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires_at - self._leeway:
                self._token, lifetime = self._fetch()
                self._expires_at = now + lifetime
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.scope:
            form["scope"] = self.scope
        response = self._http.post(
            self.token_url, data=form, headers={"Accept": "application/json"}
        )
        if response.status_code != 200:
            raise TransmitterError.from_response(response)
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or str(body.get("token_type", "")).lower() != "bearer":
            raise TransmitterError(response.status_code, None, "no bearer access_token")
        expires_in = body.get("expires_in")
        # RFC 6749 §5.1: expires_in is RECOMMENDED; without it, assume a short life.
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
        return token, lifetime


def well_known_url(issuer: str) -> str:
    """SSF 1.0 §7.2: the configuration sits at /.well-known/ssf-configuration, before any
    path the issuer has.
    """
    parts = urlsplit(issuer)
    path = "/.well-known/ssf-configuration" + parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True)
class Transmitter:
    """A transmitter's configuration metadata (SSF 1.0 §7.1)."""

    issuer: str
    jwks_uri: str
    configuration_endpoint: str
    status_endpoint: str | None = None
    add_subject_endpoint: str | None = None
    remove_subject_endpoint: str | None = None
    verification_endpoint: str | None = None
    delivery_methods_supported: tuple[str, ...] = ()
    spec_version: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def token_endpoint(self) -> str:
        """Handover's OAuth token endpoint (not part of the SSF metadata)."""
        return self.metadata.get("token_endpoint") or self.issuer.rstrip("/") + "/oauth/token"

    @classmethod
    def discover(cls, issuer: str, http: httpx.Client) -> Transmitter:
        """Read the configuration; its `issuer` must be the one asked for (SSF 1.0 §7.2.1)."""
        response = http.get(well_known_url(issuer), headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise TransmitterError.from_response(response)
        metadata = response.json()
        if not isinstance(metadata, dict):
            raise ValueError("the SSF configuration is not a JSON object")
        if str(metadata.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
            raise ValueError(f"the configuration names issuer {metadata.get('issuer')!r}")
        for required in ("jwks_uri", "configuration_endpoint"):
            if not isinstance(metadata.get(required), str):
                raise ValueError(f"the SSF configuration has no {required}")

        def optional(name: str) -> str | None:
            value = metadata.get(name)
            return value if isinstance(value, str) else None

        return cls(
            issuer=metadata["issuer"],
            jwks_uri=metadata["jwks_uri"],
            configuration_endpoint=metadata["configuration_endpoint"],
            status_endpoint=optional("status_endpoint"),
            add_subject_endpoint=optional("add_subject_endpoint"),
            remove_subject_endpoint=optional("remove_subject_endpoint"),
            verification_endpoint=optional("verification_endpoint"),
            delivery_methods_supported=tuple(metadata.get("delivery_methods_supported") or ()),
            spec_version=optional("spec_version"),
            metadata=metadata,
        )


class StreamClient:
    """The receiver's side of SSF 1.0 §8 stream management, for one transmitter.

    Every call sends a bearer token from `tokens` (fetching a fresh one once if the
    transmitter answers 401) and raises `TransmitterError` on any error status.
    """

    def __init__(self, transmitter: Transmitter, tokens: TokenSource, http: httpx.Client) -> None:
        self.transmitter = transmitter
        self.tokens = tokens
        self.http = http

    def create(
        self,
        delivery: Mapping[str, Any],
        events_requested: Sequence[str],
        description: str | None = None,
    ) -> dict[str, Any]:
        """Create a stream (§8.1.1.1); the transmitter's stream configuration."""
        body: dict[str, Any] = {
            "delivery": dict(delivery),
            "events_requested": list(events_requested),
        }
        if description is not None:
            body["description"] = description
        return self._json(self._call("POST", self.transmitter.configuration_endpoint, json=body))

    def create_push(
        self,
        endpoint_url: str,
        authorization_header: str,
        events_requested: Sequence[str],
        description: str | None = None,
    ) -> dict[str, Any]:
        delivery = {
            "method": PUSH,
            "endpoint_url": endpoint_url,
            "authorization_header": authorization_header,
        }
        return self.create(delivery, events_requested, description)

    def create_poll(
        self, events_requested: Sequence[str], description: str | None = None
    ) -> dict[str, Any]:
        """A poll stream; its `delivery.endpoint_url` is where to poll."""
        return self.create({"method": POLL}, events_requested, description)

    def get(self, stream_id: str) -> dict[str, Any]:
        url = self.transmitter.configuration_endpoint
        return self._json(self._call("GET", url, params={"stream_id": stream_id}))

    def list_streams(self) -> list[dict[str, Any]]:
        """Every stream of this receiver (a GET without `stream_id`)."""
        result = self._call("GET", self.transmitter.configuration_endpoint).json()
        return result if isinstance(result, list) else [result]

    def update(self, stream_id: str, **changes: Any) -> dict[str, Any]:
        """Change some properties (PATCH, §8.1.1.3)."""
        body = {"stream_id": stream_id, **changes}
        return self._json(self._call("PATCH", self.transmitter.configuration_endpoint, json=body))

    def replace(self, configuration: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the receiver-supplied properties (PUT, §8.1.1.4); must have `stream_id`."""
        url = self.transmitter.configuration_endpoint
        return self._json(self._call("PUT", url, json=dict(configuration)))

    def delete(self, stream_id: str) -> None:
        url = self.transmitter.configuration_endpoint
        self._call("DELETE", url, params={"stream_id": stream_id})

    def status(self, stream_id: str) -> dict[str, Any]:
        url = self._endpoint("status_endpoint")
        return self._json(self._call("GET", url, params={"stream_id": stream_id}))

    def set_status(self, stream_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
        """Enable, pause or disable the stream (§8.1.2.2)."""
        body = {"stream_id": stream_id, "status": status}
        if reason is not None:
            body["reason"] = reason
        return self._json(self._call("POST", self._endpoint("status_endpoint"), json=body))

    def verify(self, stream_id: str, state: str | None = None) -> None:
        """Ask for a verification event (§8.1.4.2), which echoes `state`."""
        body = {"stream_id": stream_id}
        if state is not None:
            body["state"] = state
        self._call("POST", self._endpoint("verification_endpoint"), json=body)

    def add_subject(
        self, stream_id: str, subject: Mapping[str, Any], verified: bool = True
    ) -> None:
        body = {"stream_id": stream_id, "subject": dict(subject), "verified": verified}
        self._call("POST", self._endpoint("add_subject_endpoint"), json=body)

    def remove_subject(self, stream_id: str, subject: Mapping[str, Any]) -> None:
        body = {"stream_id": stream_id, "subject": dict(subject)}
        self._call("POST", self._endpoint("remove_subject_endpoint"), json=body)

    def _endpoint(self, name: str) -> str:
        url = getattr(self.transmitter, name)
        if not url:
            raise TransmitterError(404, None, f"the transmitter publishes no {name}")
        return str(url)

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, url, **kwargs)
        if response.status_code == 401:
            self.tokens.invalidate()
            response = self._send(method, url, **kwargs)
        if response.status_code >= 400:
            raise TransmitterError.from_response(response)
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens.token()}", "Accept": "application/json"}
        return self.http.request(method, url, headers=headers, **kwargs)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        body = response.json()
        if not isinstance(body, dict):
            raise TransmitterError(response.status_code, None, "expected a JSON object")
        return body

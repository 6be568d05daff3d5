"""The transmitter's signing keys, fetched from its `jwks_uri` and cached by `kid`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import Key, import_key

log = logging.getLogger(__name__)


class UnknownKey(LookupError):
    """No key with this `kid` is published (even after a refresh, where one was allowed)."""


class KeysUnavailable(RuntimeError):
    """The key set could not be fetched: a passing fault, not a reason to refuse the SET."""


class KeySource(Protocol):
    def key(self, kid: str) -> Key:
        """The public key named `kid`; raises `UnknownKey` or `KeysUnavailable`."""
        ...


class StaticKeys:
    """A fixed set of public keys, for a receiver configured by hand (or a test)."""

    def __init__(self, keys: Iterable[Key]) -> None:
        self._keys = {str(key.kid): key for key in keys if key.kid}

    def key(self, kid: str) -> Key:
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKey(kid) from None


def parse_jwks(document: Any) -> dict[str, Key]:
    """The signing keys of a JWK Set by `kid`.

    Keys without a `kid`, meant for encryption, or of a type joserfc does not know are
    skipped rather than failing the whole set: a transmitter may publish more than we use.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set: no 'keys' array")
    keys: dict[str, Key] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry["kid"]] = import_key(entry)
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("skipping JWK %r: %s", entry["kid"], exc)
    return keys


class JwksCache:
    """Keys from a JWKS URL, fetched on first use and again when an unknown `kid` appears.

    A refresh for an unknown `kid` happens at most once per `min_refresh_interval`
    seconds, so a stream of tokens naming a bogus `kid` cannot make us hammer the
    transmitter. The set is also refetched once it is `max_age` seconds old, so keys the
    transmitter withdrew stop verifying; if that refetch fails the old keys are kept.
    Safe to share between threads: one fetch at a time, the others wait for its result.
    """

    def __init__(
        self,
        jwks_uri: str,
        http: httpx.Client | None = None,
        *,
        min_refresh_interval: float = 30.0,
        max_age: float | None = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_uri = jwks_uri
        self._http = http or httpx.Client(timeout=10.0)
        self._min_refresh_interval = min_refresh_interval
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Key] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_error = ""
        #: How many times the set was requested (successfully or not).
        self.fetches = 0

    def key(self, kid: str) -> Key:
        with self._lock:
            now = self._clock()
            if self._fetched_at is None:
                if not self._may_refresh(now):
                    raise KeysUnavailable(self._last_error)
                self._refresh(now)
            elif self._stale(now) and self._may_refresh(now):
                try:
                    self._refresh(now)
                except KeysUnavailable as exc:
                    log.warning("keeping the cached keys: %s", exc)
            key = self._keys.get(kid)
            if key is None and self._may_refresh(now):
                self._refresh(now)
                key = self._keys.get(kid)
            if key is None:
                raise UnknownKey(kid)
            return key

    def kids(self) -> frozenset[str]:
        """The `kid`s cached now (fetching nothing)."""
        with self._lock:
            return frozenset(self._keys)

    def _stale(self, now: float) -> bool:
        fetched_at = self._fetched_at
        return (
            self._max_age is not None
            and fetched_at is not None
            and now - fetched_at >= self._max_age
        )

    def _may_refresh(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._min_refresh_interval

    def _refresh(self, now: float) -> None:
        """Fetch the set; the caller holds the lock. A failed fetch counts as an attempt."""
        self.fetches += 1
        self._attempted_at = now
        try:
            response = self._http.get(self.jwks_uri, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            self._last_error = f"cannot fetch {self.jwks_uri}: {exc}"
            raise KeysUnavailable(self._last_error) from exc
        self._keys = keys
        self._fetched_at = now

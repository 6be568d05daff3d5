"""Poll delivery (RFC 8936): we POST to the transmitter's poll URL and get SETs back.

The transmitter keeps returning a SET until it is acknowledged, so each poll carries the
acknowledgements (`ack`) of the SETs the previous one brought and were processed, and the
errors (`setErrs`) of those that failed verification. A SET whose handler failed, or that
could not be verified because the keys were unreachable, is neither: it comes back later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from handover.receiver.dedupe import JtiStore
from handover.receiver.events import SecurityEvent
from handover.receiver.jwks import KeysUnavailable
from handover.receiver.streams import TokenSource, TransmitterError
from handover.receiver.verify import InvalidSet, SetVerifier

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll (or a drain, added up) brought.

    `delivered`: new events handed to the handler; `duplicates`: SETs already processed,
    acknowledged again without calling the handler; `errors`: SETs refused, reported in
    `setErrs`; `deferred`: SETs left for a later poll (handler failed, keys unreachable).
    """

    delivered: int = 0
    duplicates: int = 0
    errors: int = 0
    more_available: bool = False
    deferred: int = 0

    @property
    def received(self) -> int:
        return self.delivered + self.duplicates + self.errors + self.deferred

    def __add__(self, other: PollResult) -> PollResult:
        return PollResult(
            self.delivered + other.delivered,
            self.duplicates + other.duplicates,
            self.errors + other.errors,
            other.more_available,
            self.deferred + other.deferred,
        )


class Poller:
    """Polls one stream and hands each new, verified event to `handler`.

    Acknowledgements wait in the poller until the next request carries them; call `flush()`
    (or use `drain()` or `run()`, which do) before dropping a poller, or the transmitter
    sends those SETs again, to be dropped as duplicates. One poll runs at a time.
    """

    def __init__(
        self,
        poll_url: str,
        token_source: TokenSource,
        verifier: SetVerifier,
        dedupe: JtiStore,
        handler: Callable[[SecurityEvent], None],
        *,
        http: httpx.Client | None = None,
    ) -> None:
        self.poll_url = poll_url
        self.tokens = token_source
        self.verifier = verifier
        self.dedupe = dedupe
        self.handler = handler
        # The read timeout leaves room for a transmitter holding a long poll open.
        self._http = http or httpx.Client(timeout=httpx.Timeout(10.0, read=120.0))
        self._lock = threading.Lock()
        self._acks: dict[str, None] = {}
        self._errs: dict[str, dict[str, str]] = {}

    @property
    def pending_acks(self) -> tuple[str, ...]:
        """`jti`s processed but not yet acknowledged to the transmitter."""
        return tuple(self._acks)

    @property
    def pending_errors(self) -> dict[str, dict[str, str]]:
        """`setErrs` not yet reported to the transmitter."""
        return dict(self._errs)

    def poll_once(self, max_events: int = 100, return_immediately: bool = True) -> PollResult:
        """One request: send pending acks and errors, process what comes back.

        Raises `httpx.HTTPError` or `TransmitterError` if the request fails; the pending
        acks and errors are then kept for the next request.
        """
        with self._lock:
            sets, more_available = self._request(max_events, return_immediately)
            delivered = duplicates = errors = deferred = 0
            for jti, token in sets.items():
                outcome = self._process(jti, token)
                delivered += outcome == "delivered"
                duplicates += outcome == "duplicate"
                errors += outcome == "error"
                deferred += outcome == "deferred"
            return PollResult(delivered, duplicates, errors, more_available, deferred)

    def flush(self) -> None:
        """Send the pending acks and errors, asking for no SETs (RFC 8936 §2.4.3)."""
        with self._lock:
            if self._acks or self._errs:
                self._request(0, True)

    def drain(self, max_events: int = 100, max_polls: int = 10_000) -> PollResult:
        """Poll until the transmitter has nothing more, then acknowledge the last batch.

        Stops at the first poll that brings nothing new: no SETs, or only deferred ones
        (which would just come back).
        """
        total = PollResult()
        for _ in range(max_polls):
            result = self.poll_once(max_events=max_events, return_immediately=True)
            total += result
            if result.received == result.deferred:
                break
        self.flush()
        return total

    def run(
        self,
        stop: threading.Event,
        *,
        max_events: int = 100,
        interval: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        """Poll until `stop` is set: at once while SETs keep coming, else every `interval`
        seconds, backing off on errors. Acknowledges the last batch before returning.
        """
        backoff = interval
        try:
            while not stop.is_set():
                try:
                    result = self.poll_once(max_events=max_events, return_immediately=True)
                except (httpx.HTTPError, TransmitterError) as exc:
                    log.warning("poll failed (%s); retrying in %.0f s", exc, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, max_backoff)
                    continue
                backoff = interval
                if result.received == result.deferred or not result.more_available:
                    stop.wait(interval)
        finally:
            try:
                self.flush()
            except (httpx.HTTPError, TransmitterError) as exc:
                log.warning("could not send the last acknowledgements: %s", exc)

    def _request(self, max_events: int, return_immediately: bool) -> tuple[dict[str, str], bool]:
        """POST one poll request; the caller holds the lock."""
        acks, errs = list(self._acks), dict(self._errs)
        body: dict[str, Any] = {"maxEvents": max_events, "returnImmediately": return_immediately}
        if acks:
            body["ack"] = acks
        if errs:
            body["setErrs"] = errs
        response = self._post(body)
        if response.status_code == 401:
            self.tokens.invalidate()
            response = self._post(body)
        if response.status_code != 200:
            raise TransmitterError.from_response(response)
        # The transmitter has the acks and errors now: they are not sent again.
        for jti in acks:
            self._acks.pop(jti, None)
        for jti in errs:
            self._errs.pop(jti, None)
        return self._parse(response)

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.tokens.token()}",
            "Accept": "application/json",
        }
        return self._http.post(self.poll_url, json=body, headers=headers)

    @staticmethod
    def _parse(response: httpx.Response) -> tuple[dict[str, str], bool]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise TransmitterError(response.status_code, None, "poll response is not an object")
        sets = body.get("sets", {})
        if not isinstance(sets, dict) or not all(
            isinstance(jti, str) and isinstance(token, str) for jti, token in sets.items()
        ):
            raise TransmitterError(response.status_code, None, "'sets' is not a jti→SET map")
        return sets, body.get("moreAvailable") is True

    def _process(self, jti: str, token: str) -> str:
        """Verify, dedupe and handle one SET; which of the `PollResult` counts it adds to."""
        try:
            event = self.verifier.verify(token)
            if event.jti != jti:
                raise InvalidSet("invalid_request", f"the SET's jti is {event.jti!r}")
        except InvalidSet as exc:
            if exc.may_pass_later:  # left unacknowledged, it comes back with the next poll
                log.warning("cannot verify polled SET %s yet: %s", jti, exc)
                return "deferred"
            log.warning("refused polled SET %s: %s", jti, exc)
            self._errs[jti] = exc.as_json()
            return "error"
        except KeysUnavailable as exc:
            log.warning("cannot verify polled SET %s now: %s", jti, exc)
            return "deferred"
        if not self.dedupe.first_time(jti):
            self._acks[jti] = None
            return "duplicate"
        try:
            self.handler(event)
        except Exception:
            self.dedupe.forget(jti)
            log.exception("handler failed on SET %s; it will be polled again", jti)
            return "deferred"
        self._acks[jti] = None
        return "delivered"

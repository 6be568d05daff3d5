"""Push delivery over HTTP (RFC 8935) with httpx."""

from __future__ import annotations

import httpx

from handover.services.ports import PushResult

#: RFC 8935 §2.3 error codes after which resending the same SET cannot succeed.
PERMANENT_ERRORS = frozenset({"invalid_request"})


class HttpSetSender:
    """The services' `SetSender`: one pooled, thread-safe HTTP client."""

    def __init__(self, timeout: float = 5.0, max_connections: int = 64) -> None:
        self.client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def push(self, url: str, authorization: str | None, token: str) -> PushResult:
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        try:
            response = self.client.post(url, content=token, headers=headers)
        except httpx.TimeoutException:
            return PushResult(False, None, "the receiver did not answer in time")
        except httpx.HTTPError as exc:
            return PushResult(False, None, f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return PushResult(True, response.status_code)
        if response.status_code == 400:
            err, description = _error(response)
            return PushResult(False, 400, f"{err}: {description}", err in PERMANENT_ERRORS)
        # 413: the receiver will never take a SET this size; sending it again cannot help.
        permanent = response.status_code == 413
        reason = response.reason_phrase or "error"
        return PushResult(False, response.status_code, reason, permanent)

    def close(self) -> None:
        self.client.close()


def _error(response: httpx.Response) -> tuple[str, str]:
    """RFC 8935 §2.3's `{"err": ..., "description": ...}`, tolerating receivers that differ."""
    try:
        body = response.json()
    except ValueError:
        return "unknown", response.text[:200]
    if not isinstance(body, dict):
        return "unknown", str(body)[:200]
    return str(body.get("err", "unknown")), str(body.get("description", ""))[:500]

"""The SSF 1.0 transmitter's HTTP surface: metadata, keys, stream management and poll.

Streams belong to platforms (the token's `platform` claim): `ssf.manage` changes them,
`ssf.read` reads them, asks for verification and polls. Refusals are `StreamError`s,
answered with the status codes of SSF 1.0 §8 in RFC 9457 problem bodies (`api/problems`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from handover.api import ssf_schemas as schemas
from handover.api.deps import AppSettings, UowFactory, require_platform
from handover.api.edge import UnsafeInput, load_json
from handover.api.problems import responses
from handover.domain.ssf.events import EVENTS_SUPPORTED
from handover.domain.ssf.streams import DeliveryMethod, Refusal, Stream, StreamError
from handover.services.ports import SetSigner
from handover.services.ssf import delivery, transmitter

router = APIRouter(tags=["shared signals"])
#: SSF 1.0 §8's refusals of stream management (the stream is named in the query or body).
_STREAM = responses(400, 404)
#: Acknowledgements a poll may carry: ten times the most SETs one poll hands out.
MAX_POLL_ANSWERS = 10 * delivery.MAX_POLL_EVENTS

Manager = Annotated[str, Depends(require_platform("ssf.manage"))]
Reader = Annotated[str, Depends(require_platform("ssf.read"))]


async def _transmitter(request: Request) -> transmitter.Transmitter:
    found: transmitter.Transmitter = request.app.state.transmitter
    return found


async def _signer(request: Request) -> SetSigner:
    signer: SetSigner = request.app.state.set_signer
    return signer


Tx = Annotated[transmitter.Transmitter, Depends(_transmitter)]
Signer = Annotated[SetSigner, Depends(_signer)]


async def _body(request: Request) -> Any:
    try:
        return load_json(await request.body())
    except UnsafeInput as exc:
        raise StreamError(Refusal.INVALID_REQUEST, f"The body cannot be used: {exc}.") from None
    except (ValueError, UnicodeDecodeError):
        raise StreamError(Refusal.INVALID_REQUEST, "The body is not JSON.") from None


Body = Annotated[Any, Depends(_body)]


def config(stream: Stream, issuer: str) -> dict[str, Any]:
    """A stream's configuration as SSF §8.1.1 shows it (the push secret is never echoed)."""
    shown: dict[str, Any] = {"method": stream.delivery.method.value}
    if stream.delivery.endpoint_url:
        shown["endpoint_url"] = stream.delivery.endpoint_url
    body: dict[str, Any] = {
        "stream_id": stream.stream_id,
        "iss": issuer,
        "aud": stream.audience,
        "events_supported": list(EVENTS_SUPPORTED),
        "events_requested": list(stream.events_requested),
        "events_delivered": list(stream.events_delivered),
        "delivery": shown,
        "min_verification_interval": stream.min_verification_interval,
        "signing_alg": stream.signing_alg.value,
    }
    if stream.description is not None:
        body["description"] = stream.description
    return body


def status(stream: Stream) -> dict[str, Any]:
    body: dict[str, Any] = {"stream_id": stream.stream_id, "status": stream.status.value}
    if stream.status_reason:
        body["reason"] = stream.status_reason
    return body


@router.get("/.well-known/ssf-configuration")
@router.get("/.well-known/ssf-configuration/{issuer_path:path}", include_in_schema=False)
def ssf_configuration(settings: AppSettings, signer: Signer) -> JSONResponse:
    """Transmitter metadata (SSF §7); also under the issuer's path, for an issuer URL with
    one (the path follows `/.well-known/ssf-configuration`, as in RFC 8414)."""
    base = settings.public_url.rstrip("/")
    return JSONResponse(
        {
            "spec_version": "1_0",
            "issuer": base,
            "jwks_uri": f"{base}/ssf/jwks.json",
            "delivery_methods_supported": [method.value for method in DeliveryMethod],
            "configuration_endpoint": f"{base}/ssf/streams",
            "status_endpoint": f"{base}/ssf/status",
            "add_subject_endpoint": f"{base}/ssf/subjects:add",
            "remove_subject_endpoint": f"{base}/ssf/subjects:remove",
            "verification_endpoint": f"{base}/ssf/verify",
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
            "default_subjects": "ALL",
            "events_supported": list(EVENTS_SUPPORTED),
            "signing_algorithms_supported": signer.algorithms(),
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/ssf/jwks.json")
def ssf_jwks(signer: Signer) -> JSONResponse:
    return JSONResponse(signer.jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.post(
    "/ssf/streams",
    status_code=201,
    openapi_extra=schemas.body(schemas.StreamConfigIn),
    responses=responses(409),
)
async def create_stream(
    uow_factory: UowFactory, tx: Tx, platform_id: Manager, body: Body
) -> JSONResponse:
    stream = await run_in_threadpool(transmitter.create_stream, uow_factory, tx, platform_id, body)
    return JSONResponse(config(stream, tx.issuer), status_code=201)


@router.get("/ssf/streams", responses=_STREAM)
async def read_streams(
    uow_factory: UowFactory,
    tx: Tx,
    platform_id: Reader,
    stream_id: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    found = await run_in_threadpool(transmitter.get_streams, uow_factory, platform_id, stream_id)
    if stream_id is not None:
        return JSONResponse(config(found[0], tx.issuer))
    return JSONResponse([config(stream, tx.issuer) for stream in found])


@router.patch("/ssf/streams", openapi_extra=schemas.body(schemas.StreamConfigIn), responses=_STREAM)
async def update_stream(
    uow_factory: UowFactory, tx: Tx, platform_id: Manager, body: Body
) -> JSONResponse:
    stream = await run_in_threadpool(
        transmitter.update_stream, uow_factory, tx, platform_id, body, replace=False
    )
    return JSONResponse(config(stream, tx.issuer))


@router.put("/ssf/streams", openapi_extra=schemas.body(schemas.StreamConfigIn), responses=_STREAM)
async def replace_stream(
    uow_factory: UowFactory, tx: Tx, platform_id: Manager, body: Body
) -> JSONResponse:
    stream = await run_in_threadpool(
        transmitter.update_stream, uow_factory, tx, platform_id, body, replace=True
    )
    return JSONResponse(config(stream, tx.issuer))


@router.delete("/ssf/streams", status_code=204, responses=_STREAM)
async def delete_stream(
    uow_factory: UowFactory,
    platform_id: Manager,
    stream_id: Annotated[str | None, Query()] = None,
) -> Response:
    await run_in_threadpool(transmitter.delete_stream, uow_factory, platform_id, stream_id)
    return Response(status_code=204)


@router.get("/ssf/status", responses=_STREAM)
async def read_status(
    uow_factory: UowFactory,
    platform_id: Reader,
    stream_id: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    if not stream_id:
        raise StreamError(Refusal.INVALID_REQUEST, "stream_id is required")
    found = await run_in_threadpool(transmitter.get_streams, uow_factory, platform_id, stream_id)
    return JSONResponse(status(found[0]))


@router.post("/ssf/status", openapi_extra=schemas.body(schemas.StatusIn), responses=_STREAM)
async def update_status(uow_factory: UowFactory, platform_id: Manager, body: Body) -> JSONResponse:
    if not isinstance(body, dict):
        raise StreamError(Refusal.INVALID_REQUEST, "the body must be a JSON object")
    stream = await run_in_threadpool(transmitter.set_status, uow_factory, platform_id, body)
    return JSONResponse(status(stream))


@router.post("/ssf/subjects:add", openapi_extra=schemas.body(schemas.SubjectIn), responses=_STREAM)
async def add_subject(uow_factory: UowFactory, platform_id: Manager, body: Body) -> Response:
    await run_in_threadpool(
        transmitter.change_subject, uow_factory, platform_id, body, include=True
    )
    return Response(status_code=200)


@router.post(
    "/ssf/subjects:remove",
    status_code=204,
    openapi_extra=schemas.body(schemas.SubjectIn),
    responses=_STREAM,
)
async def remove_subject(uow_factory: UowFactory, platform_id: Manager, body: Body) -> Response:
    await run_in_threadpool(
        transmitter.change_subject, uow_factory, platform_id, body, include=False
    )
    return Response(status_code=204)


@router.post(
    "/ssf/verify",
    status_code=204,
    openapi_extra=schemas.body(schemas.VerifyIn),
    responses=_STREAM | responses(429),
)
async def verify(uow_factory: UowFactory, platform_id: Reader, body: Body) -> Response:
    await run_in_threadpool(transmitter.request_verification, uow_factory, platform_id, body)
    return Response(status_code=204)


def _poll_request(body: Any) -> tuple[int | None, bool, list[str], dict[str, str]]:
    """RFC 8936 §2.4's request members, checked."""
    if not isinstance(body, dict):
        raise StreamError(Refusal.INVALID_REQUEST, "the body must be a JSON object")
    max_events = body.get("maxEvents")
    if max_events is not None and (
        not isinstance(max_events, int) or isinstance(max_events, bool) or max_events < 0
    ):
        raise StreamError(Refusal.INVALID_REQUEST, "maxEvents must be a non-negative integer")
    immediately = body.get("returnImmediately", False)
    if not isinstance(immediately, bool):
        raise StreamError(Refusal.INVALID_REQUEST, "returnImmediately must be a boolean")
    acks = body.get("ack", [])
    if not isinstance(acks, list) or not all(isinstance(jti, str) for jti in acks):
        raise StreamError(Refusal.INVALID_REQUEST, "ack must be a list of jti strings")
    errs = body.get("setErrs", {})
    if not isinstance(errs, dict) or not all(
        isinstance(value, dict) and isinstance(value.get("err"), str) for value in errs.values()
    ):
        raise StreamError(
            Refusal.INVALID_REQUEST, 'setErrs must map each jti to {"err": ..., "description": ...}'
        )
    if len(acks) + len(errs) > MAX_POLL_ANSWERS:
        raise StreamError(
            Refusal.INVALID_REQUEST, f"at most {MAX_POLL_ANSWERS} ack and setErrs entries per poll"
        )
    errors = {jti: f"{v['err']}: {v.get('description', '')}"[:2000] for jti, v in errs.items()}
    return max_events, immediately, acks, errors


@router.post("/ssf/poll/{stream_id}", openapi_extra=schemas.body(schemas.PollIn))
async def poll(
    stream_id: str,
    uow_factory: UowFactory,
    settings: AppSettings,
    signer: Signer,
    platform_id: Reader,
    body: Body,
) -> JSONResponse:
    """RFC 8936 poll: acknowledge, then receive; waits for events unless told not to."""
    max_events, immediately, acks, errors = _poll_request(body)
    issuer = settings.public_url.rstrip("/")
    deadline = time.monotonic() + settings.poll_wait_seconds
    while True:
        batch = await run_in_threadpool(
            delivery.poll,
            uow_factory,
            signer,
            issuer,
            platform_id,
            stream_id,
            max_events=max_events,
            acks=acks,
            errors=errors,
        )
        acks, errors = [], {}
        if batch.sets or immediately or max_events == 0 or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.1)
    return JSONResponse({"sets": batch.sets, "moreAvailable": batch.more_available})

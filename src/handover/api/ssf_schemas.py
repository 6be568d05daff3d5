"""Request and response shapes of the SSF endpoints, for the OpenAPI document.

The endpoints read raw JSON and leave validation to `domain.ssf.streams` (so every error is
the SSF §8 status with a problem document, not a framework's 422); these models only
describe the bodies to API readers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Delivery(BaseModel):
    method: Literal["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"] = Field(
        description="Push (RFC 8935) or poll (RFC 8936)"
    )
    endpoint_url: str | None = Field(
        None, description="Push: the receiver's https endpoint. Poll: set by Handover."
    )
    authorization_header: str | None = Field(
        None, description="Push: sent as Authorization with every SET; never shown back"
    )


class StreamConfigIn(BaseModel):
    """Receiver-supplied properties; transmitter-supplied ones may be echoed unchanged."""

    model_config = ConfigDict(extra="forbid")
    stream_id: str | None = Field(None, description="Required to update or replace")
    delivery: Delivery | None = None
    events_requested: list[str] | None = None
    description: str | None = None
    signing_alg: Literal["ES256", "RS256"] | None = Field(
        None, description="Handover extension: the SETs' JWS algorithm (default ES256)"
    )
    min_verification_interval: int | None = None


class StatusIn(BaseModel):
    stream_id: str
    status: Literal["enabled", "paused", "disabled"]
    reason: str | None = None


class Subject(BaseModel):
    format: Literal["phone_number"]
    phone_number: str = Field(examples=["+8613800138000"])


class SubjectIn(BaseModel):
    stream_id: str
    subject: Subject
    verified: bool | None = None


class VerifyIn(BaseModel):
    stream_id: str
    state: str | None = None


class SetError(BaseModel):
    err: str
    description: str | None = None


class PollIn(BaseModel):
    maxEvents: int | None = Field(None, ge=0, description="At most 1,000 are returned")  # noqa: N815
    returnImmediately: bool = False  # noqa: N815
    ack: list[str] = Field(default_factory=list)
    setErrs: dict[str, SetError] = Field(default_factory=dict)  # noqa: N815


def body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body shaped like `model` (inlined)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    _inline(schema, definitions)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _inline(node: Any, definitions: dict[str, Any]) -> None:
    """Replace `$ref`s to the model's own definitions by the definitions themselves."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            node.pop("$ref")
            node.update(definitions[name])
        for value in node.values():
            _inline(value, definitions)
    elif isinstance(node, list):
        for value in node:
            _inline(value, definitions)

"""Phone numbers in E.164, parsed and validated with `phonenumbers`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from handover.domain.rejections import Reason, Rejected, quoted

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}

_POSSIBILITY_ERRORS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "invalid length for its country",
}


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A valid number in E.164 form with the region (ISO 3166 alpha-2) it belongs to."""

    e164: str
    region: str

    def __str__(self) -> str:
        return self.e164


def parse_number(text: str, region: str | None = None) -> PhoneNumber:
    """Parse international (`+86 138 1234 5678`) or national input with a region.

    Raises `Rejected(invalid_number)` with a human reason when the text is not a valid,
    assignable number.
    """
    return _parse(text.strip(), region.upper() if region else None)


@lru_cache(maxsize=100_000)
def _parse(text: str, region: str | None) -> PhoneNumber:
    if not text:
        raise Rejected(Reason.INVALID_NUMBER, "empty number")
    if not text.startswith("+") and region is None:
        raise Rejected(
            Reason.INVALID_NUMBER, f"{quoted(text)} is not in E.164 (+...) and no region was given"
        )
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        detail = _PARSE_ERRORS.get(exc.error_type, str(exc))
        raise Rejected(Reason.INVALID_NUMBER, f"{quoted(text)}: {detail}") from None
    possibility = phonenumbers.is_possible_number_with_reason(parsed)
    if possibility not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        detail = _POSSIBILITY_ERRORS.get(possibility, "not a possible number")
        raise Rejected(Reason.INVALID_NUMBER, f"{quoted(text)}: {detail}")
    if not phonenumbers.is_valid_number(parsed):
        raise Rejected(Reason.INVALID_NUMBER, f"{quoted(text)}: not a valid number for its country")
    found_region = phonenumbers.region_code_for_number(parsed) or "001"
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    return PhoneNumber(e164=e164, region=found_region)

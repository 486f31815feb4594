"""The OTLP/JSON mapping: protobuf's JSON mapping plus the OTLP rules.

OTLP/JSON differs from plain proto3 JSON in three ways that matter here: trace and span ids are
hex strings (not base64), enums are written as integers, and 64-bit integers may be either decimal
strings or numbers. Field names are lowerCamelCase on output; both spellings are accepted on input,
and unknown fields are ignored (as the OTLP spec requires of receivers).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

#: JSON keys that hold trace/span ids (the only bytes fields OTLP writes as hex).
ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


def to_json_dict(message: Message) -> dict[str, Any]:
    """A message as an OTLP/JSON object (hex ids, integer enums, int64 as strings)."""
    data = json_format.MessageToDict(message, use_integers_for_enums=True)
    return _convert_ids(data, _b64_to_hex)


def to_json(message: Message) -> str:
    """A message as compact OTLP/JSON text (one line)."""
    return json.dumps(to_json_dict(message), separators=(",", ":"), allow_nan=True)


def from_json(data: str | bytes | Mapping[str, Any], message_type: type[M]) -> M:
    """Parse OTLP/JSON text (or an already parsed object) into ``message_type``.

    Raises ``ValueError`` with a readable message on invalid JSON, a non-object document, a bad
    hex id or a value of the wrong type.
    """
    try:
        obj = json.loads(data) if isinstance(data, (str, bytes, bytearray)) else data
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    try:
        converted = _convert_ids(obj, _hex_to_b64)
        return json_format.ParseDict(converted, message_type(), ignore_unknown_fields=True)
    except RecursionError:
        raise ValueError("invalid OTLP/JSON: nested too deeply") from None
    except (json_format.ParseError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise ValueError(f"invalid OTLP/JSON for {message_type.DESCRIPTOR.name}: {exc}") from None


def _convert_ids(obj: Any, convert: Any) -> Any:
    """Copy ``obj`` converting every id-valued key with ``convert`` (ids only occur as field keys)."""
    if isinstance(obj, Mapping):
        return {
            k: convert(k, v) if k in ID_KEYS and isinstance(v, str) else _convert_ids(v, convert)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_convert_ids(v, convert) for v in obj]
    return obj


def _hex_to_b64(key: str, value: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{key} must be a hex string, got {value!r}") from None
    return base64.b64encode(raw).decode("ascii")


def _b64_to_hex(key: str, value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).hex()
    except binascii.Error:  # pragma: no cover - json_format always writes valid base64
        raise ValueError(f"{key}: invalid base64 {value!r}") from None

"""OTLP in and out: decode requests into the shared model, encode it back, files and a receiver."""

from telemetry_asserts.otlp.decode import (
    DecodeError,
    PayloadTooLarge,
    UnsupportedContentType,
    decode_message,
    decode_request,
)
from telemetry_asserts.otlp.encode import EncodeError, encode_request, normalize, request_message
from telemetry_asserts.otlp.files import loads_otlp_json, read_otlp_json, write_otlp_json
from telemetry_asserts.otlp.receiver import OtlpReceiver, ReceiverStats

__all__ = [
    "DecodeError",
    "EncodeError",
    "OtlpReceiver",
    "PayloadTooLarge",
    "ReceiverStats",
    "UnsupportedContentType",
    "decode_message",
    "decode_request",
    "encode_request",
    "loads_otlp_json",
    "normalize",
    "read_otlp_json",
    "request_message",
    "write_otlp_json",
]

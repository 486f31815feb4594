"""Fuzzing the decoder and the receiver: malformed input is always a clean 4xx, never a crash."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry_asserts import model
from telemetry_asserts.otlp import (
    DecodeError,
    OtlpReceiver,
    PayloadTooLarge,
    UnsupportedContentType,
    decode_request,
    encode_request,
)

MAX_BODY = 4096
SIGNALS = ("traces", "metrics", "logs")
FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SAMPLE = model.Telemetry(
    spans=(model.Span("stage", 0xABC, 0x1, 0x2, attributes=model.Attributes({"a": (1, 2), "b": "x"}),
                      events=(model.Event("e", 5),), links=(model.Link(0xABC, 0x3),)),),
    metrics=(model.MetricPoint("h", model.MetricKind.HISTOGRAM, count=2, sum=1.0, bucket_counts=(1, 1),
                               explicit_bounds=(0.5,), temporality=model.Temporality.DELTA),
             model.MetricPoint("c", model.MetricKind.COUNTER, value=3, temporality=model.Temporality.CUMULATIVE)),
    logs=(model.LogRecord({"k": [1, "v"]}, severity_number=9, trace_id=0xABC, span_id=0x1),),
)
VALID = {(s, ct): encode_request(s, SAMPLE, ct) for s in SIGNALS for ct in ("application/x-protobuf", "application/json")}

# JSON shaped like OTLP, with any value in any place: reaches the deep paths of the JSON mapping.
OTLP_KEYS = ["resourceSpans", "resourceMetrics", "resourceLogs", "resource", "attributes", "scopeSpans",
             "scopeMetrics", "scopeLogs", "scope", "spans", "metrics", "logRecords", "traceId", "spanId",
             "parentSpanId", "name", "kind", "status", "code", "events", "links", "key", "value", "stringValue",
             "intValue", "doubleValue", "boolValue", "bytesValue", "arrayValue", "kvlistValue", "values", "sum",
             "gauge", "histogram", "exponentialHistogram", "dataPoints", "asInt", "asDouble", "bucketCounts",
             "explicitBounds", "aggregationTemporality", "isMonotonic", "body", "severityNumber", "timeUnixNano",
             "startTimeUnixNano", "count", "positive", "exemplars", "flags"]
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                        st.sampled_from(["", "00", "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174",
                                         "NaN", "-1", "18446744073709551616", "zz", "AQID"]), st.text(max_size=5))
OTLP_JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(OTLP_KEYS), inner, max_size=4)),
    max_leaves=25,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid request body with bytes flipped, cut or inserted."""
    body = bytearray(draw(st.sampled_from(sorted(VALID.values()))))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, max(0, len(body) - 1)))
        if op == "flip" and body:
            body[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del body[at:at + draw(st.integers(1, 16))]
        else:
            body[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(body)


BODIES = st.one_of(
    st.binary(max_size=300),
    mutated(),
    OTLP_JSON.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(sorted(VALID.values())),
    st.binary(min_size=MAX_BODY + 1, max_size=MAX_BODY + 64),
)
ENCODINGS = st.sampled_from(["", "identity", "gzip", "deflate", "br", "gzip, br"])
CONTENT_TYPES = st.one_of(
    st.sampled_from(["application/x-protobuf", "application/json", "application/json; charset=utf-8",
                     "APPLICATION/X-PROTOBUF", "application/protobuf", "text/plain", "", "application/xml"]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
)


def _encode(body: bytes, encoding: str, compress: bool) -> bytes:
    if not compress:
        return body  # a header that lies about the encoding
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


@FUZZ
@given(signal=st.sampled_from(SIGNALS), body=BODIES, content_type=CONTENT_TYPES, encoding=ENCODINGS,
       compress=st.booleans())
def test_decode_request_raises_only_decode_errors(
    signal: str, body: bytes, content_type: str, encoding: str, compress: bool
) -> None:
    try:
        result = decode_request(signal, _encode(body, encoding, compress), content_type, encoding,  # type: ignore[arg-type]
                                max_bytes=MAX_BODY)
    except DecodeError as exc:
        assert str(exc)  # every rejection says why
    else:
        assert isinstance(result, model.Telemetry)


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver(grpc_port=None, max_body_bytes=MAX_BODY, max_buffered_items=10_000) as r:
        yield r


def _post(receiver: OtlpReceiver, path: str, body: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _still_serving(receiver: OtlpReceiver) -> None:
    receiver.clear()
    assert _post(receiver, "/v1/traces", VALID[("traces", "application/x-protobuf")],
                 {"Content-Type": "application/x-protobuf"}) == 200
    assert [s.name for s in receiver.telemetry().spans] == ["stage"]


@FUZZ
@given(signal=st.sampled_from(SIGNALS), body=BODIES, content_type=CONTENT_TYPES, encoding=ENCODINGS,
       compress=st.booleans())
def test_receiver_answers_malformed_bodies_with_400_413_or_415_and_keeps_serving(
    receiver: OtlpReceiver, signal: str, body: bytes, content_type: str, encoding: str, compress: bool
) -> None:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    sent = _encode(body, encoding, compress)
    status = _post(receiver, f"/v1/{signal}", sent, headers)
    assert status in (200, 400, 413, 415)
    assert status == _expected_status(signal, sent, content_type, encoding)  # the receiver adds no surprises
    _still_serving(receiver)


def _expected_status(signal: str, body: bytes, content_type: str, encoding: str) -> int:
    try:
        decode_request(signal, body, content_type, encoding, max_bytes=MAX_BODY)  # type: ignore[arg-type]
    except UnsupportedContentType:
        return 415
    except PayloadTooLarge:
        return 413
    except DecodeError:
        return 400
    return 200


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(
    st.binary(max_size=200),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12).map(
        lambda length: f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                       f"Content-Length: {length}\r\n\r\n".encode()),
    st.binary(max_size=40).map(
        lambda junk: b"POST /v1/logs HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
                     + junk),
))
def test_receiver_survives_garbage_on_the_socket(receiver: OtlpReceiver, raw: bytes) -> None:
    with socket.create_connection(("127.0.0.1", receiver.http_port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    if reply.startswith(b"HTTP/"):
        assert not reply.split(b" ", 2)[1].startswith(b"5"), reply[:200]
    _still_serving(receiver)

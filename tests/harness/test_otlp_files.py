"""OTLP JSON files: the collector file exporter's line format in, a dump of a run out."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from telemetry_asserts import model
from telemetry_asserts.otlp import DecodeError, EncodeError, normalize
from telemetry_asserts.otlp.files import loads_otlp_json, read_otlp_json, write_otlp_json

TRACE = "5b8efff798038103d269b633813fc60c"
ROOT, CHILD = "eee19b7ec3c1b174", "eee19b7ec3c1b175"
RESOURCE = {"attributes": [{"key": "service.name", "value": {"stringValue": "neuro-preprocess"}}]}

# What the collector's file exporter writes: one export request per line (pdata JSON marshaling).
COLLECTOR_LINES = [
    {"resourceSpans": [{"resource": RESOURCE, "scopeSpans": [{"scope": {"name": "pipeline", "version": "0.1.0"},
     "spans": [
        {"traceId": TRACE, "spanId": ROOT, "parentSpanId": "", "flags": 769, "name": "process_file", "kind": 1,
         "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000002500000000",
         "attributes": [{"key": "neuro.shape", "value": {"arrayValue": {"values": [
             {"intValue": "64"}, {"intValue": "64"}, {"intValue": "64"}]}}}],
         "status": {}},
        {"traceId": TRACE, "spanId": CHILD, "parentSpanId": ROOT, "name": "stage.n4", "kind": 1,
         "startTimeUnixNano": "1700000000100000000", "endTimeUnixNano": "1700000001100000000",
         "events": [{"timeUnixNano": "1700000000200000000", "name": "converged",
                     "attributes": [{"key": "iterations", "value": {"intValue": "50"}}]}],
         "status": {"code": 2, "message": "did not converge"}},
     ]}], "schemaUrl": "https://opentelemetry.io/schemas/1.26.0"}]},
    {"resourceMetrics": [{"resource": RESOURCE, "scopeMetrics": [{"scope": {"name": "pipeline"}, "metrics": [
        {"name": "neuro.files.processed", "unit": "{file}", "sum": {"dataPoints": [
            {"attributes": [{"key": "status", "value": {"stringValue": "ok"}}],
             "startTimeUnixNano": "1700000000000000000", "timeUnixNano": "1700000003000000000", "asInt": "3"}],
            "aggregationTemporality": 2, "isMonotonic": True}},
        {"name": "neuro.stage.duration", "unit": "s", "histogram": {"dataPoints": [
            {"count": "2", "sum": 1.5, "bucketCounts": ["1", "1"], "explicitBounds": [1], "min": 0.5, "max": 1}],
            "aggregationTemporality": 2}},
    ]}]}]},
    {"resourceLogs": [{"resource": RESOURCE, "scopeLogs": [{"scope": {"name": "pipeline.logs"}, "logRecords": [
        {"timeUnixNano": "1700000001000000000", "severityNumber": 9, "severityText": "INFO",
         "body": {"stringValue": "n4 done"}, "traceId": TRACE, "spanId": CHILD, "flags": 1}]}]}]},
]


def _write_lines(path: Path, objects: list[dict], blank_between: bool = False) -> Path:
    sep = "\n\n" if blank_between else "\n"
    path.write_text(sep.join(json.dumps(o, separators=(",", ":")) for o in objects) + "\n")
    return path


def test_reads_the_collector_file_exporter_line_format(tmp_path: Path) -> None:
    t = read_otlp_json(_write_lines(tmp_path / "otel.jsonl", COLLECTOR_LINES, blank_between=True))
    root, child = t.spans
    assert (root.name, root.trace_id_hex, root.span_id_hex, root.parent_span_id) == ("process_file", TRACE, ROOT, None)
    assert root.attributes == {"neuro.shape": (64, 64, 64)} and root.duration_ns == 2_500_000_000
    assert root.resource == model.Resource(model.Attributes({"service.name": "neuro-preprocess"}),
                                           "https://opentelemetry.io/schemas/1.26.0")
    assert (child.parent_span_id, child.status_code, child.status_description) == (
        root.span_id, model.StatusCode.ERROR, "did not converge")
    assert child.events == (model.Event("converged", 1700000000200000000, model.Attributes({"iterations": 50})),)
    counter, histogram = t.metrics
    assert (counter.kind, counter.value, counter.attributes) == (model.MetricKind.COUNTER, 3, {"status": "ok"})
    assert (histogram.count, histogram.sum, histogram.bucket_counts, histogram.explicit_bounds) == (
        2, 1.5, (1, 1), (1.0,))
    (log,) = t.logs
    assert (log.body, log.severity_number, log.span_id_hex, log.scope.name) == ("n4 done", 9, CHILD, "pipeline.logs")


def test_a_single_document_an_array_and_gzip_read_like_lines(tmp_path: Path) -> None:
    expected = read_otlp_json(_write_lines(tmp_path / "lines.jsonl", COLLECTOR_LINES))
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(COLLECTOR_LINES[0], indent=2))
    assert read_otlp_json(pretty).spans == expected.spans
    array = tmp_path / "array.json"
    array.write_text(json.dumps(COLLECTOR_LINES, indent=1))
    assert read_otlp_json(array) == expected
    zipped = tmp_path / "otel.jsonl.gz"
    zipped.write_bytes(gzip.compress((tmp_path / "lines.jsonl").read_bytes()))
    assert read_otlp_json(zipped) == expected
    assert loads_otlp_json((tmp_path / "lines.jsonl").read_text()) == expected
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n \n")
    assert read_otlp_json(empty) == model.Telemetry()


def test_write_then_read_is_the_same_telemetry(tmp_path: Path) -> None:
    original = read_otlp_json(_write_lines(tmp_path / "in.jsonl", COLLECTOR_LINES))
    out = write_otlp_json(original, tmp_path / "dump.jsonl")
    lines = out.read_text().splitlines()
    assert [list(json.loads(line)) for line in lines] == [["resourceSpans"], ["resourceMetrics"], ["resourceLogs"]]
    assert json.loads(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["parentSpanId"] == ROOT
    assert read_otlp_json(out) == normalize(original)
    only_spans = write_otlp_json(model.Telemetry(spans=original.spans), tmp_path / "spans.jsonl")
    assert len(only_spans.read_text().splitlines()) == 1
    assert write_otlp_json(model.Telemetry(), tmp_path / "none.jsonl").read_text() == ""


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "dump.jsonl"
    write_otlp_json(model.Telemetry(spans=(model.Span("first", 1, 1),)), target)
    before = target.read_text()
    unencodable = model.Telemetry(spans=(model.Span("bad", 1, 2, attributes=model.Attributes({"n": 2**70})),))
    with pytest.raises(EncodeError, match=r"cannot encode 1180591620717411303424 as an OTLP AnyValue"):
        write_otlp_json(unencodable, target)
    assert target.read_text() == before
    write_otlp_json(model.Telemetry(spans=(model.Span("second", 1, 3),)), target)
    assert [s.name for s in read_otlp_json(target).spans] == ["second"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump.jsonl"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"resourceSpans": []}\n{"resourceSpans": [\n', "{path}:2: invalid JSON: Expecting value (column 20)"),
        ('{"resourceSpans": []}\n{"spans": []}\n',
         "{path}:2: not an OTLP export request: expected a key resourceSpans, resourceMetrics or resourceLogs, "
         "got ['spans']"),
        ("[1]", "{path}:1: expected a JSON object (an OTLP export request), got int"),
        ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "traceId": "00", "spanId": "01"}]}]}]}',
         "{path}:1: span 'x': trace_id must be 16 bytes, got 1 (00)"),
        ('{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"spanId": "xyz"}]}]}]}',
         "{path}:1: invalid OTLP/JSON for ExportLogsServiceRequest: spanId must be a hex string, got 'xyz'"),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DecodeError) as info:
        read_otlp_json(path)
    assert str(info.value) == message.format(path=path)


def test_binary_garbage_is_a_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(DecodeError, match=r"bin.jsonl: not UTF-8 text: "):
        read_otlp_json(path)
    path.write_bytes(b"\x1f\x8b\x08\x00junk")
    with pytest.raises(DecodeError, match=r"bin.jsonl: invalid gzip file: "):
        read_otlp_json(path)

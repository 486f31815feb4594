"""OTLP JSON files: the collector file exporter's line format, read and written.

Each line is one OTLP/JSON export request (``resourceSpans``, ``resourceMetrics`` or
``resourceLogs``); a file holding a single JSON document (pretty-printed, or a JSON array of such
requests) is read too, and so is a gzip-compressed file.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from telemetry_asserts import model
from telemetry_asserts._files import write_text_atomic
from telemetry_asserts.otlp import jsonfmt
from telemetry_asserts.otlp.decode import (
    REQUEST_TYPES,
    DecodeError,
    Signal,
    decode_message,
)
from telemetry_asserts.otlp.encode import request_message

#: The top-level key of each signal's export request in OTLP/JSON (and its proto spelling).
SIGNAL_KEYS: dict[Signal, tuple[str, str]] = {
    "traces": ("resourceSpans", "resource_spans"),
    "metrics": ("resourceMetrics", "resource_metrics"),
    "logs": ("resourceLogs", "resource_logs"),
}


def read_otlp_json(path: str | os.PathLike[str]) -> model.Telemetry:
    """Everything in an OTLP JSON file (lines or one document, optionally gzip) as the model.

    Raises :class:`DecodeError` naming the file and line on any malformed content.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DecodeError(f"{path}: invalid gzip file: {exc}") from None
    return loads_otlp_json(data, source=str(path))


def loads_otlp_json(data: str | bytes, source: str = "<string>") -> model.Telemetry:
    """Like :func:`read_otlp_json` for text already in memory; errors name ``source``."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{source}: not UTF-8 text: {exc}") from None
    result = model.Telemetry()
    for line, obj in _documents(text, source):
        for request in obj if isinstance(obj, list) else [obj]:
            result = result + _decode_request(request, f"{source}:{line}")
    return result


def write_otlp_json(telemetry: model.Telemetry, path: str | os.PathLike[str]) -> Path:
    """Dump ``telemetry`` in the file exporter's line format (one request per signal), atomically.

    The file is written next to its destination and renamed into place, so a reader never sees a
    partial dump. Signals without data are not written; returns the path.
    """
    path = Path(path)
    lines = [
        jsonfmt.to_json(request_message(signal, telemetry))
        for signal, items in (("traces", telemetry.spans), ("metrics", telemetry.metrics), ("logs", telemetry.logs))
        if items
    ]
    return write_text_atomic(path, "".join(line + "\n" for line in lines))


def _documents(text: str, source: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for a single document, else for each non-blank line."""
    if not text.strip():
        return
    try:
        yield 1, json.loads(text)
        return
    except RecursionError:
        raise DecodeError(f"{source}: JSON nested too deeply") from None
    except json.JSONDecodeError:
        pass  # not one document: read it as JSON lines
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except RecursionError:
            raise DecodeError(f"{source}:{number}: JSON nested too deeply") from None
        except json.JSONDecodeError as exc:
            raise DecodeError(f"{source}:{number}: invalid JSON: {exc.msg} (column {exc.colno})") from None


def _decode_request(obj: Any, where: str) -> model.Telemetry:
    if not isinstance(obj, Mapping):
        raise DecodeError(f"{where}: expected a JSON object (an OTLP export request), got {type(obj).__name__}")
    found = [(signal, key) for signal, keys in SIGNAL_KEYS.items() for key in keys if key in obj]
    if not found:
        raise DecodeError(
            f"{where}: not an OTLP export request: expected a key resourceSpans, resourceMetrics or "
            f"resourceLogs, got {sorted(obj)[:5]}"
        )
    result = model.Telemetry()
    for signal, key in found:
        try:
            message = jsonfmt.from_json({key: obj[key]}, REQUEST_TYPES[signal])
            result = result + decode_message(message)
        except ValueError as exc:  # DecodeError included
            raise DecodeError(f"{where}: {exc}") from None
    return result

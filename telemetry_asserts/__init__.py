"""telemetry_asserts: capture OpenTelemetry spans, metrics and logs per test and assert contracts on them.

One immutable model (:mod:`telemetry_asserts.model`) holds telemetry from every source: the pytest
``telemetry`` fixture (in-memory SDK capture), the OTLP receiver, OTLP JSON files. ``check(t)`` gives
the same assertions over any of them; YAML contracts are the same expectations written as data.

Names are imported lazily, so loading the pytest plugin costs nothing for tests that do not use it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # the model and the one error type
    "Telemetry": "model", "Span": "model", "Event": "model", "Link": "model", "MetricPoint": "model",
    "LogRecord": "model", "Resource": "model", "Scope": "model", "Attributes": "model",
    "StatusCode": "model", "SpanKind": "model", "MetricKind": "model", "Temporality": "model",
    "TelemetryAssertionError": "errors",
    # capture and views
    "Capture": "capture", "spans_from_sdk": "capture", "metrics_from_sdk": "capture", "logs_from_sdk": "capture",
    "TelemetryView": "view", "check": "view",
    "SpanView": "spans", "SpanAssert": "spans",
    "MetricView": "metrics", "LogView": "logs",
    "wait_until": "waiting", "LiveTelemetryView": "view", "install_global": "capture",
    "assert_tree": "tree", "match_tree": "tree", "parse_tree": "tree", "ExpectedSpan": "tree", "TreeMatch": "tree",
    # value matchers
    "Absent": "matchers", "AnyValue": "matchers", "Contains": "matchers", "InRange": "matchers",
    "IsOneOf": "matchers", "IsType": "matchers", "Predicate": "matchers", "Regex": "matchers",
    "values_equal": "matchers", "match_attributes": "matchers",
    # cardinality, sensitive data, lint
    "assert_max_cardinality": "cardinality", "assert_max_series": "cardinality",
    "attribute_cardinality": "cardinality", "series_count": "cardinality", "find_id_like": "cardinality",
    "SensitiveRules": "sensitive", "assert_no_sensitive": "sensitive", "find_sensitive": "sensitive",
    # (the lint function stays ``telemetry_asserts.lint.lint``: a package attribute named ``lint``
    # would be shadowed by the submodule of the same name once imported; views offer ``.lint()``)
    "Finding": "lint", "LintOptions": "lint", "LintReport": "lint",
    # reports
    "render_tree": "report", "render_waterfall": "report", "render_metrics": "report", "render_telemetry": "report",
    "render_logs": "report", "format_duration": "report",
    "render_html": "html_report", "write_html": "html_report", "render_static_html": "html_report",
    "ReportSection": "html_report",
    # OTLP and files
    "OtlpReceiver": "otlp", "DecodeError": "otlp", "decode_request": "otlp", "encode_request": "otlp",
    "normalize": "otlp", "read_otlp_json": "otlp", "write_otlp_json": "otlp",
    # contracts
    "load_contract": "contracts", "parse_contract": "contracts", "run_contract": "contracts",
    "ContractError": "contracts", "ContractResult": "contracts",
    "CaseResult": "junit", "SuiteResult": "junit", "write_junit_xml": "junit",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'telemetry_asserts' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

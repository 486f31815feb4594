"""Sensitive keys and values: the default deny list, extension, and where findings come from."""

from __future__ import annotations

import re

import pytest

from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.model import Attributes, Event, LogRecord, MetricKind, MetricPoint, Resource, Span, Telemetry
from telemetry_asserts.sensitive import (
    SensitiveMatch,
    SensitiveRules,
    assert_no_sensitive,
    find_sensitive,
    luhn_valid,
)

RULES = SensitiveRules.default()


@pytest.mark.parametrize(
    ("key", "term"),
    [
        ("password", "password"),
        ("db.password", "password"),
        ("userPassword", "password"),
        ("passwd", "passwd"),
        ("access_token", "token"),
        ("http.request.header.authorization", "authorization"),
        ("api_key", "api key"),
        ("apiKey", "api key"),
        ("X-API-KEY", "api key"),
        ("client_secret", "secret"),
        ("Set-Cookie", "cookie"),
        ("credit_card", "credit card"),
    ],
)
def test_deny_keys(key: str, term: str) -> None:
    assert RULES.check_key(key) == term


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.usage.input_tokens",
        "secretary",
        "neuro.subject_id",
        "neuro.file.name",
        "db.statement",
        "exception.stacktrace",
        "neuro.passes",
        "keyboard",
    ],
)
def test_harmless_keys(key: str) -> None:
    assert RULES.check_key(key) is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("jane.doe@example.org", "e-mail address"),
        ("contact: jane@example.org", "e-mail address"),
        ("4111 1111 1111 1111", "credit card number"),
        ("card 5500-0055-5555-5559 used", "credit card number"),
        ("378282246310005", "credit card number"),
        ("Bearer abcdefghijkl.mnop", "bearer/basic credentials"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig", "JSON web token"),
        ("-----BEGIN RSA PRIVATE KEY-----", "private key"),
        ("postgres://admin:hunter2@db/neuro", "password in URL"),
        ("AKIAIOSFODNN7EXAMPLE", "AWS access key id"),
        (("ok", "jane@example.org"), "e-mail address"),
    ],
)
def test_sensitive_values(value: object, kind: str) -> None:
    assert RULES.check_value(value) == kind


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111112",
        "1700000000000000000",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "sub-01_T1w.nii.gz",
        "https://example.org/x",
        "n4",
        4111111111111111,
        True,
        "x4111111111111111",
    ],
)
def test_harmless_values(value: object) -> None:
    assert RULES.check_value(value) is None


def test_luhn() -> None:
    assert luhn_valid("4111 1111 1111 1111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("")


def test_scan_reports_key_before_value_and_never_the_value() -> None:
    got = RULES.scan({"password": "hunter2", "owner": "jane@example.org", "stage": "n4"})
    assert got == [
        SensitiveMatch("password", "key matches deny term 'password'"),
        SensitiveMatch("owner", "value looks like an e-mail address"),
    ]
    assert all("hunter2" not in m.reason and "jane" not in m.reason for m in got)


def test_extend_keys_patterns_and_allow() -> None:
    rules = RULES.extend(keys=["patient_name", "mrn"], patterns={"subject id": r"sub-\d+"}, allow_keys=["token"])
    assert rules.check_key("dicom.PatientName") == "patient name"
    assert rules.check_key("hospital.mrn") == "mrn"
    assert rules.check_value("sub-01") == "subject id"
    assert rules.scan({"token": "x"}) == []
    assert RULES.check_key("hospital.mrn") is None  # the default is unchanged
    bare = RULES.extend(patterns=[re.compile(r"\bSSN\b")])
    assert bare.check_value("my SSN is") == r"\bSSN\b"


def test_find_sensitive_everywhere_aggregated() -> None:
    res = Resource(Attributes({"service.name": "neuro", "deploy.api_key": "k"}))
    spans = tuple(
        Span(
            "login",
            trace_id=1,
            span_id=i + 1,
            attributes=Attributes({"password": "x"}),
            resource=res,
            events=(Event("retry", attributes=Attributes({"user": "a@b.org"})),),
        )
        for i in range(3)
    )
    metrics = (MetricPoint("m", MetricKind.COUNTER, Attributes({"session.cookie": "c"}), value=1, resource=res),)
    logs = (LogRecord("mail sent to jane@example.org", attributes=Attributes({"auth.token": "t"}), resource=res),)
    found = find_sensitive(Telemetry(spans, metrics, logs))
    assert [(f.where, f.key, f.count) for f in found] == [
        ("span 'login'", "password", 3),
        ("span 'login' event 'retry'", "user", 3),
        ("metric 'm'", "session.cookie", 1),
        ("log", "auth.token", 1),
        ("log", "<body>", 1),
        ("resource", "deploy.api_key", 1),
    ]


def test_assert_no_sensitive_message() -> None:
    t = Telemetry(spans=(Span("login", 1, 1, attributes=Attributes({"password": "hunter2"})),))
    with pytest.raises(TelemetryAssertionError) as info:
        assert_no_sensitive(t)
    assert str(info.value) == (
        "sensitive data in telemetry (1):\n  span 'login': attribute 'password': key matches deny term 'password' (1x)"
    )
    assert "hunter2" not in str(info.value)
    assert_no_sensitive(Telemetry(spans=(Span("ok", 1, 1, attributes=Attributes({"neuro.stage": "n4"})),)))

"""Sensitive data in telemetry: a deny list of attribute keys and value patterns, extensible.

Keys are split into words (``http.request.header.authorization`` -> ``http request header
authorization``; ``apiKey`` -> ``api key``) and a deny term must appear as whole words, so
``access_token`` is caught while ``gen_ai.usage.input_tokens`` is not. String values (and the strings
in arrays) are checked against patterns: e-mail addresses, credit card numbers (13-19 digits that
starting 2-6 that pass the Luhn check), bearer/basic credentials, JWTs, private keys, passwords inside URLs, AWS
access key ids. Messages never repeat a sensitive value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .cardinality import _items
from .errors import TelemetryAssertionError
from .model import Resource, Span, Telemetry

__all__ = ["SensitiveFinding", "SensitiveMatch", "SensitiveRules", "assert_no_sensitive", "find_sensitive", "luhn_valid"]

DEFAULT_KEYS = (
    "password",
    "passwd",
    "passphrase",
    "token",
    "secret",
    "api key",
    "apikey",
    "private key",
    "authorization",
    "auth header",
    "cookie",
    "set cookie",
    "credit card",
    "card number",
    "cvv",
    "ssn",
)

# Card numbers start with 2-6 (major industry identifier); epoch-nanosecond strings start with 1.
_CARD = re.compile(r"(?<![0-9A-Za-z])[2-6](?:[ -]?\d){12,18}(?![0-9A-Za-z])")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (spaces and dashes ignored) is valid."""
    ds = [int(c) for c in digits if c.isdigit()]
    if not ds:
        return False
    total = 0
    for i, d in enumerate(reversed(ds)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _has_card_number(value: str) -> bool:
    return any(luhn_valid(m.group()) for m in _CARD.finditer(value))


DEFAULT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Lookbehinds start each match at a token boundary: linear time on long values (stack traces).
    (
        "e-mail address",
        re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ),
    ("bearer/basic credentials", re.compile(r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)),
    ("JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("password in URL", re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
)


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


@dataclass(frozen=True)
class SensitiveMatch:
    """One attribute that looks sensitive: ``reason`` says why, without the value."""

    key: str
    reason: str


@dataclass(frozen=True)
class SensitiveRules:
    """Deny terms for keys (whole words), named value patterns, and the credit-card check."""

    keys: tuple[str, ...] = DEFAULT_KEYS
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = DEFAULT_PATTERNS
    credit_cards: bool = True
    allow_keys: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def default(cls) -> SensitiveRules:
        return cls()

    def extend(
        self,
        keys: Iterable[str] = (),
        patterns: Mapping[str, str | re.Pattern[str]] | Iterable[str | re.Pattern[str]] = (),
        allow_keys: Iterable[str] = (),
    ) -> SensitiveRules:
        """New rules with more deny terms (``"neuro patient name"`` or ``"patient_name"``), more value
        patterns (a ``{name: regex}`` mapping or bare regexes) and exact keys to allow."""
        named = (
            patterns.items()
            if isinstance(patterns, Mapping)
            else ((p if isinstance(p, str) else p.pattern, p) for p in patterns)
        )
        compiled = tuple((name, re.compile(p) if isinstance(p, str) else p) for name, p in named)
        return SensitiveRules(
            keys=self.keys + tuple(" ".join(_words(k)) for k in keys),
            patterns=self.patterns + compiled,
            credit_cards=self.credit_cards,
            allow_keys=self.allow_keys | frozenset(allow_keys),
        )

    def check_key(self, key: str) -> str | None:
        """The deny term the key contains (as whole words), or None."""
        if key in self.allow_keys:
            return None
        words = _words(key)
        joined = " " + " ".join(words) + " "
        squashed = "".join(words)
        for term in self.keys:
            if f" {term} " in joined or (" " in term and term.replace(" ", "") == squashed):
                return term
        return None

    def check_value(self, value: Any) -> str | None:
        """The name of the pattern a string value (or a string in an array) matches, or None."""
        if isinstance(value, (list, tuple)):
            return next((r for r in map(self.check_value, value) if r), None)
        if not isinstance(value, str):
            return None
        for name, pattern in self.patterns:
            if pattern.search(value):
                return name
        if self.credit_cards and _has_card_number(value):
            return "credit card number"
        return None

    def scan(self, attributes: Mapping[str, Any], _memo: dict[Any, str | None] | None = None) -> list[SensitiveMatch]:
        """Every sensitive key or value among ``attributes`` (one match per key)."""
        memo: dict[Any, str | None] = {} if _memo is None else _memo
        out = []
        for key, value in _items(attributes):
            if key in self.allow_keys:
                continue
            k = ("k", key)
            if k not in memo:
                term = self.check_key(key)
                memo[k] = None if term is None else f"key matches deny term {term!r}"
            reason = memo[k]
            if reason is None and isinstance(value, (str, list, tuple)):
                v = ("v", value)
                if v not in memo:
                    kind = self.check_value(value)
                    memo[v] = None if kind is None else f"value looks like {_a(kind)}"
                reason = memo[v]
            if reason is not None:
                out.append(SensitiveMatch(key, reason))
        return out


@dataclass(frozen=True)
class SensitiveFinding:
    """A sensitive attribute and where it was recorded (``span 'x'``, ``metric 'm'``, ``log``)."""

    where: str
    key: str
    reason: str
    count: int = 1


def find_sensitive(
    telemetry: Telemetry, rules: SensitiveRules | None = None, *, span_label: Callable[[Span], str] | None = None
) -> list[SensitiveFinding]:
    """Sensitive attributes on spans (and their events), metric points, log records and log bodies,
    and on resources; one finding per place and key, with how many items carried it.
    ``span_label`` names a span's place (default ``span 'name'``)."""
    label = span_label or (lambda s: f"span {s.name!r}")
    rules = rules or SensitiveRules.default()
    found: dict[tuple[str, str], tuple[str, int]] = {}
    memo: dict[Any, str | None] = {}

    def note(where: str, attrs: Mapping[str, Any]) -> None:
        for m in rules.scan(attrs, memo):
            reason, n = found.get((where, m.key), (m.reason, 0))
            found[(where, m.key)] = (reason, n + 1)

    for s in telemetry.spans:
        where = label(s)
        note(where, s.attributes)
        for e in s.events:
            note(f"{where} event {e.name!r}", e.attributes)
    for p in telemetry.metrics:
        note(f"metric {p.name!r}", p.attributes)
    for r in telemetry.logs:
        note("log", r.attributes)
        kind = rules.check_value(r.body) if isinstance(r.body, str) else None
        if kind is not None:
            reason, n = found.get(("log", "<body>"), (f"value looks like {_a(kind)}", 0))
            found[("log", "<body>")] = (reason, n + 1)
    resources: dict[Resource, None] = {}
    for items in (telemetry.spans, telemetry.metrics, telemetry.logs):
        for item in items:
            resources.setdefault(item.resource)
    for res in resources:  # each distinct resource once
        note("resource", res.attributes)
    return [SensitiveFinding(where, key, reason, n) for (where, key), (reason, n) in found.items()]


def assert_no_sensitive(telemetry: Telemetry, rules: SensitiveRules | None = None) -> None:
    """No span, metric, log or resource carries a sensitive key or value."""
    found = find_sensitive(telemetry, rules)
    if found:
        lines = [f"sensitive data in telemetry ({len(found)}):"]
        lines += [f"  {f.where}: attribute {f.key!r}: {f.reason} ({f.count}x)" for f in found]
        raise TelemetryAssertionError("\n".join(lines))

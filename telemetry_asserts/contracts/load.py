"""Load telemetry contracts from YAML, validated by the published JSON schema.

Every problem is reported as ``FILE:LINE:COL: KEY: message`` where KEY is the path of the offending
key (``metrics[0].type``); the lines come from the YAML node tree (``yaml.compose``), so they point
at what the author wrote. Schema errors, duplicate keys, duplicate check ids, bad regular
expressions, inverted ranges and unparsable trees are all reported at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ..matchers import Absent, AllOf, AnyValue, Contains, InRange, IsOneOf, IsType, Not, Regex
from ..errors import did_you_mean

__all__ = [
    "SECTIONS",
    "Check",
    "Contract",
    "ContractError",
    "ContractIssue",
    "expected_value",
    "expected_attributes",
    "load_contract",
    "parse_contract",
    "schema",
]

#: The sections of a contract that hold checks, in report order.
SECTIONS = ("resource", "traces", "spans", "metrics", "logs", "limits")
LIMIT_KINDS = ("cardinality", "series", "forbidden_attributes", "sensitive", "no_errors", "lint")
_COMMON = ("id", "title", "points", "feedback")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class ContractIssue:
    """One problem in a contract file, located by line and key path."""

    source: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    key: str  # e.g. "metrics[0].type"; "" for the document
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}" if self.line else self.source
        return f"{where}: {self.key + ': ' if self.key else ''}{self.message}"


class ContractError(ValueError):
    """A contract file is malformed; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[ContractIssue]) -> None:
        self.issues = tuple(issues)
        n = len(self.issues)
        head = f"malformed contract ({n} problem{'s' if n != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  {i}" for i in self.issues)]))


@dataclass(frozen=True)
class Check:
    """One check of a contract: its section, its id and the validated spec as written."""

    id: str
    section: str
    spec: Mapping[str, Any]
    line: int = 0
    key: str = ""

    @property
    def title(self) -> str:
        return str(self.spec.get("title", ""))

    @property
    def points(self) -> float:
        return float(self.spec.get("points", 0))

    @property
    def feedback(self) -> str:
        return str(self.spec.get("feedback", ""))

    @property
    def kind(self) -> str:
        """``trace``, ``span``, ``metric``, ``log``, ``resource`` or the limit's kind (``lint``...)."""
        if self.section == "limits":
            return next(k for k in LIMIT_KINDS if k in self.spec)
        return {"traces": "trace", "spans": "span", "metrics": "metric", "logs": "log"}.get(
            self.section, self.section
        )

    def describe(self) -> str:
        """The title, or a short description made from the spec."""
        if self.title:
            return self.title
        spec = self.spec
        if self.section == "traces":
            return f"each trace rooted at {spec['root']!r} has the expected span tree"
        if self.section == "spans":
            return f"span {spec['name']!r}" + (" is absent" if spec.get("absent") else "")
        if self.section == "metrics":
            return f"metric {spec['name']!r}" + (" is absent" if spec.get("absent") else "")
        if self.section == "logs":
            what = spec.get("body", spec.get("attributes", spec.get("severity")))
            return f"log {what!r}" + (" is absent" if spec.get("absent") else "")
        if self.section == "resource":
            return "resource attributes"
        return f"limit: {self.kind}"


@dataclass(frozen=True)
class Contract:
    """A loaded, validated contract."""

    checks: tuple[Check, ...]
    name: str = ""
    description: str = ""
    source: str = "<string>"
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def check(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(f"no check {check_id!r} in {self.source}{did_you_mean(check_id, self.ids)}")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.checks)

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)

    def select(self, ids: Sequence[str]) -> Contract:
        """A contract with only the named checks (in contract order); unknown ids raise KeyError."""
        for i in ids:
            self.check(i)
        wanted = set(ids)
        return Contract(tuple(c for c in self.checks if c.id in wanted), self.name, self.description,
                        self.source, self.data)


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The published JSON schema (draft 2020-12) of contract files."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_contract(path: str | Path) -> Contract:
    """Read and validate a contract file; raises :class:`ContractError` naming file, line and key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError([ContractIssue(str(p), 0, 0, "", f"cannot read contract: {exc.strerror or exc}")])
    except UnicodeDecodeError as exc:
        raise ContractError([ContractIssue(str(p), 0, 0, "", f"not UTF-8 text: {exc.reason}")])
    return parse_contract(text, source=str(p))


def parse_contract(text: str, source: str = "<string>") -> Contract:
    """Validate contract YAML text; ``source`` names it in error messages."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = ": ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ContractError([ContractIssue(source, line, col, "", f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise ContractError([ContractIssue(source, 0, 0, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if node is None:
        raise ContractError([ContractIssue(source, 1, 1, "", "empty contract: expected a mapping with 'version: 1'")])

    marks = _Marks(source)
    marks.walk(node, (), loader_for_keys=yaml.SafeLoader(""))
    issues = list(marks.issues)
    if not isinstance(data, dict):
        issues.append(marks.issue((), f"a contract is a mapping (version, traces, spans, metrics, logs, limits), "
                                      f"got {_json_type(data)}"))
        raise ContractError(issues)
    data = _jsonable(data)
    issues.extend(_schema_issues(data, marks))
    issues.extend(_semantic_issues(data, marks))
    if issues:
        raise ContractError(sorted(issues, key=lambda i: (i.line, i.column)))
    checks = [Check(c["id"], section, c, marks.line(p), _key(p)) for section, p, c in _iter_checks(data)]
    return Contract(tuple(checks), str(data.get("name", "")), str(data.get("description", "")), source, data)


# --- values as data -> H4's matchers -------------------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (float,), "number": (int, float), "bool": (bool,), "array": (list,),
}


def expected_value(value: Any) -> Any:
    """Turn a contract value (literal, or a matcher mapping such as ``{type: int}``) into what
    :func:`telemetry_asserts.matchers.values_equal` takes: literals as they are (lists as tuples),
    mappings as matcher objects (several keys combine with AND)."""
    if isinstance(value, list):
        return tuple(expected_value(v) for v in value)
    if not isinstance(value, Mapping):
        return value
    parts: list[Any] = []
    for key, arg in value.items():
        if key == "type":
            parts.append(IsType(*_TYPES[arg]))
        elif key == "regex":
            parts.append(Regex(arg))
        elif key == "range":
            parts.append(InRange(arg[0], arg[1]))
        elif key == "one_of":
            parts.append(IsOneOf(*(expected_value(v) for v in arg)))
        elif key == "contains":
            parts.append(Contains(*(arg if isinstance(arg, list) else [arg])))
        elif key == "absent":
            parts.append(Absent())
        elif key == "any":
            parts.append(AnyValue())
        elif key == "not":
            parts.append(Not(expected_value(arg)))
        else:  # the schema rejects these; a direct caller gets a clear error
            raise ValueError(f"unknown matcher {key!r}{did_you_mean(key, _MATCHER_KEYS)}")
    return parts[0] if len(parts) == 1 else AllOf(*parts)


_MATCHER_KEYS = ("type", "regex", "range", "one_of", "contains", "absent", "any", "not")


def expected_attributes(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """An attribute mapping of the contract with every value turned into an expectation."""
    return {k: expected_value(v) for k, v in (attrs or {}).items()}


# --- node marks ------------------------------------------------------------------------------------------


class _Marks:
    """JSON path -> (line, column) of the value node and of the key node, from the YAML node tree."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.values: dict[Path_, tuple[int, int]] = {}
        self.keys: dict[Path_, tuple[int, int]] = {}
        self.issues: list[ContractIssue] = []

    def walk(self, node: yaml.Node, path: Path_, loader_for_keys: yaml.SafeLoader) -> None:
        self.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # merged keys keep the lines of their anchor
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:str":
                    try:
                        key = loader_for_keys.construct_object(key_node)
                    except yaml.YAMLError:
                        pass
                child = (*path, str(key))
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.issues.append(ContractIssue(
                        self.source, line, key_node.start_mark.column + 1, _key(child),
                        f"duplicate key (first given on line {seen[key]})"))
                seen.setdefault(key, line)
                self.keys[child] = (line, key_node.start_mark.column + 1)
                self.walk(value_node, child, loader_for_keys)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, (*path, i), loader_for_keys)

    def position(self, path: Path_, at_key: bool = True) -> tuple[int, int]:
        """Where ``path`` was written: its key (or its value), else the nearest enclosing node."""
        p = tuple(path)
        while True:
            if at_key and p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
            if not p:
                return (0, 0)
            p = p[:-1]

    def line(self, path: Path_) -> int:
        return self.position(path)[0]

    def issue(self, path: Path_, message: str, at_key: bool = True) -> ContractIssue:
        line, col = self.position(path, at_key)
        return ContractIssue(self.source, line, col, _key(path), message)


def _key(path: Path_) -> str:
    """``metrics[0].data_points[1].attributes['neuro.stage']``: keys with dots or spaces are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else part
    return out


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _json_type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _jsonable(value: Any) -> Any:
    """YAML can give dates and non-string keys; the schema speaks JSON: stringify keys, keep dates as text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# --- schema errors -> readable issues ---------------------------------------------------------------

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "null"}


def _schema_issues(data: dict[str, Any], marks: _Marks) -> list[ContractIssue]:
    validator = jsonschema.Draft202012Validator(schema())
    out: list[ContractIssue] = []
    seen: set[tuple[int, int, str, str]] = set()
    for error in validator.iter_errors(data):
        for issue in _describe(error, marks):
            ident = (issue.line, issue.column, issue.key, issue.message)
            if ident not in seen:
                seen.add(ident)
                out.append(issue)
    return out


def _describe(error: jsonschema.ValidationError, marks: _Marks) -> Iterator[ContractIssue]:
    path: Path_ = tuple(error.absolute_path)
    inst = error.instance
    kind = error.validator
    sch = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(inst, dict):
        known = list(sch.get("properties", {}))
        for key in inst:
            if key not in known:
                yield marks.issue((*path, key), f"unknown key{did_you_mean(key, known)}; allowed: {', '.join(known)}")
        return
    if kind == "required":
        missing = [k for k in error.validator_value if k not in inst]
        for k in missing:
            yield marks.issue(path, f"missing required key {k!r}", at_key=False)
        return
    if kind in ("oneOf", "anyOf") and all(
        isinstance(s, dict) and set(s) == {"required"} for s in error.validator_value
    ):
        options = [s["required"][0] for s in error.validator_value]
        present = [o for o in options if isinstance(inst, dict) and o in inst]
        if present and kind == "oneOf":
            yield marks.issue((*path, present[1]), f"give only one of {', '.join(options)} per check "
                                                   f"(found {', '.join(present)})")
        else:
            need = "one" if kind == "oneOf" else "at least one"
            yield marks.issue(path, f"needs {need} of: {', '.join(options)}", at_key=False)
        return
    if kind in ("oneOf", "anyOf") and error.context:
        best = _best(error)
        if best is not None:
            yield from _describe(best, marks)
            return
    yield marks.issue(path, _message(error))


def _best(error: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """Among a oneOf/anyOf's alternatives, the deepest error of an alternative that fits the value's
    type (a mapping given where a name or a mapping is allowed is judged as a mapping)."""
    by_alternative: dict[int, list[jsonschema.ValidationError]] = {}
    for sub in error.context or ():
        by_alternative.setdefault(sub.relative_schema_path[0], []).append(sub)
    here = len(error.absolute_path)
    fitting = [errs for errs in by_alternative.values()
               if not any(len(e.absolute_path) == here and _type_misfit(e) for e in errs)]
    candidates = [e for errs in fitting for e in errs]
    if not candidates:
        return None
    return max(candidates, key=lambda e: len(e.absolute_path))


def _type_misfit(error: jsonschema.ValidationError) -> bool:
    """The error says the value is of the wrong kind altogether (not a wrong value of the right kind)."""
    if error.validator == "type":
        return True
    if error.validator in ("enum", "const"):
        values = error.validator_value if error.validator == "enum" else [error.validator_value]
        return not any(_same_kind(error.instance, v) for v in values)
    return False


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return True
    return type(a) is type(b)


def _message(error: jsonschema.ValidationError) -> str:
    kind, inst, val = error.validator, error.instance, error.validator_value
    if kind == "type":
        types = [val] if isinstance(val, str) else list(val)
        return f"expected {' or '.join(_TYPE_WORDS.get(t, t) for t in types)}, got {_json_type(inst)}"
    if kind == "enum":
        hint = did_you_mean(str(inst), [str(v) for v in val]) if isinstance(inst, str) else ""
        return f"{inst!r} is not one of: {', '.join(map(str, val))}{hint}"
    if kind == "const":
        return f"must be {json.dumps(val)}, got {json.dumps(inst)}"
    if kind == "pattern":
        last = error.absolute_path[-1] if error.absolute_path else ""
        if last == "prometheus_name":
            return f"{inst!r} is not a valid Prometheus metric name"
        if last == "id":
            return f"{inst!r} is not a valid check id (letters, digits and _ . : - ; starting with a letter or digit)"
        return f"{inst!r} does not match the pattern {val}"
    if kind == "minimum":
        return f"must be at least {val}, got {inst!r}"
    if kind in ("minLength", "minItems", "minProperties"):
        return "must not be empty"
    if kind == "maxItems":
        return f"at most {val} items, got {len(inst)}"
    if kind == "uniqueItems":
        return "items must be unique"
    if kind in ("oneOf", "anyOf"):
        desc = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
        return f"unexpected {_json_type(inst)}" + (f": {desc[0].lower()}{desc[1:]}" if desc else "")
    return error.message


# --- checks beyond the schema ------------------------------------------------------------------------


def _iter_checks(data: Mapping[str, Any]) -> Iterator[tuple[str, Path_, dict[str, Any]]]:
    """Every check mapping (robust to invalid documents: non-mappings are skipped)."""
    for section in SECTIONS:
        value = data.get(section)
        if section == "resource" and isinstance(value, dict):
            yield section, ("resource",), value
        elif section != "resource" and isinstance(value, list):
            for i, c in enumerate(value):
                if isinstance(c, dict):
                    yield section, (section, i), c


def _walk_values(value: Any, path: Path_) -> Iterator[tuple[Path_, Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_values(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_values(v, (*path, i))


def _semantic_issues(data: Mapping[str, Any], marks: _Marks) -> list[ContractIssue]:
    out: list[ContractIssue] = []
    first: dict[str, int] = {}
    for section, path, check in _iter_checks(data):
        cid = check.get("id")
        if not isinstance(cid, str):
            pass
        elif cid in first:
            out.append(marks.issue((*path, "id"), f"duplicate check id {cid!r} (first used on line {first[cid]})"))
        else:
            first[cid] = marks.line((*path, "id"))
        for p, v in _walk_values(check, path):
            last = p[-1] if p else None
            if last == "regex" and isinstance(v, str):
                out.extend(_regex_issue(marks, p, v))
            elif last == "patterns" and isinstance(v, list):
                for i, pat in enumerate(v):
                    out.extend(_regex_issue(marks, (*p, i), pat))
            elif last == "range" and isinstance(v, list) and len(v) == 2 and all(
                isinstance(x, (int, float)) for x in v) and v[0] > v[1]:
                out.append(marks.issue(p, f"range [{v[0]}, {v[1]}] is empty: low bound above high bound"))
            elif last in ("count", "traces", "links") and isinstance(v, dict) and isinstance(
                v.get("min"), int) and isinstance(v.get("max"), int) and v["min"] > v["max"]:
                out.append(marks.issue(p, f"min {v['min']} is greater than max {v['max']}"))
        if section == "traces" and isinstance(check.get("tree"), str):
            problem = _tree_problem(check["tree"])
            if problem:
                out.append(marks.issue((*path, "tree"), problem))
        if section == "spans" and check.get("absent"):
            extra = [k for k in check if k not in (*_COMMON, "name", "scope", "where", "absent")]
            if extra:
                out.append(marks.issue((*path, extra[0]), "an absent span has no other expectations"))
        if section in ("metrics", "logs") and check.get("absent"):
            allowed = (*_COMMON, "name", "absent") if section == "metrics" else (
                *_COMMON, "body", "severity", "attributes", "absent")
            extra = [k for k in check if k not in allowed]
            if extra:
                out.append(marks.issue((*path, extra[0]), f"an absent {section[:-1]} has no other expectations"))
        if section == "limits" and isinstance(check.get("lint"), dict):
            out.extend(_lint_issues(marks, (*path, "lint"), check["lint"]))
    return out


def _regex_issue(marks: _Marks, path: Path_, pattern: str) -> list[ContractIssue]:
    try:
        re.compile(pattern)
    except re.error as exc:
        return [marks.issue(path, f"invalid regular expression {pattern!r}: {exc}")]
    return []


def _tree_problem(text: str) -> str | None:
    """The tree parser's complaint about ``text`` (or about a matcher in a line's ``{...}``), or None."""
    from ..tree import parse_tree

    try:
        roots = parse_tree(text)
    except (ValueError, TypeError) as exc:
        return "cannot parse the tree: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    validator = jsonschema.Draft202012Validator({"$defs": schema()["$defs"], "$ref": "#/$defs/attributes"})
    for root in roots:
        for node in root.walk():
            if not node.attributes:
                continue
            error = jsonschema.exceptions.best_match(validator.iter_errors(_jsonable(dict(node.attributes))))
            where = f"in the tree, line {node.line} ({node.name})"
            if error is not None:
                return f"{where}: attributes {_key(tuple(error.absolute_path))}: {_message(error)}"
            try:
                expected_attributes(node.attributes)
            except (ValueError, re.error) as exc:
                return f"{where}: {exc}"
    return None


def _lint_issues(marks: _Marks, path: Path_, spec: Mapping[str, Any]) -> list[ContractIssue]:
    from dataclasses import fields

    from ..lint import RULES, LintOptions

    known = list(RULES)
    issues = [
        marks.issue((*path, "disable", i), f"unknown lint rule {rule!r}{did_you_mean(rule, known)}; "
                                           f"rules: {', '.join(known)}")
        for i, rule in enumerate(spec.get("disable", ()))
        if rule not in known
    ]
    options = [f.name for f in fields(LintOptions) if f.name != "disable"]
    issues += [
        marks.issue((*path, "options", key), f"unknown lint option{did_you_mean(key, options)}; "
                                             f"options: {', '.join(options)}")
        for key in spec.get("options", {})
        if key not in options
    ]
    return issues

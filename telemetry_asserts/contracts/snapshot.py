"""Snapshot mode: record a run's telemetry shape as a contract file, and compare later runs with it.

The shape is what stays the same from run to run: span names and hierarchy, attribute keys and
their OpenTelemetry types (values are volatile: sizes, durations, paths, ids), metric names, kinds,
units and attribute keys/types. Traces with the same shape are recorded once; children are sorted
so the file does not depend on timing. The file is an ordinary contract (``check`` runs it), and it
is never rewritten silently: a different shape is a failure showing the diff unless ``update``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .. import model
from .._files import write_text_atomic
from ..tree import SpanForest

__all__ = ["SnapshotOutcome", "render_snapshot", "snapshot_data", "snapshot_file"]

HEADER = (
    "# Telemetry shape recorded by `telemetry-asserts snapshot` (volatile values are replaced by their\n"
    "# types). Review changes to this file like code; re-record with `--update`.\n"
)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        return "array"
    return "str"


def _attribute_types(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: {"type": _type_name(attrs[k])} for k in sorted(attrs)}


def _node(forest: SpanForest, i: int) -> dict[str, Any]:
    span = forest.spans[i]
    out: dict[str, Any] = {"name": span.name}
    if span.attributes:
        out["attributes"] = _attribute_types(span.attributes)
    children = sorted((_node(forest, c) for c in forest.children[i]), key=_canonical)
    if children:
        out["children"] = children
    return out


def _canonical(node: Mapping[str, Any]) -> str:
    return yaml.safe_dump(node, sort_keys=True)


def _ident(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "_.:-" else "_" for ch in text).strip("_") or "span"
    return cleaned if cleaned[0].isalnum() else "x" + cleaned


def snapshot_data(telemetry: model.Telemetry, name: str = "snapshot") -> dict[str, Any]:
    """The shape of ``telemetry`` as contract data (a ``version: 1`` mapping)."""
    forest = SpanForest(telemetry.spans)
    shapes: dict[str, tuple[dict[str, Any], int]] = {}
    for r in forest.roots:
        node = _node(forest, r)
        key = _canonical(node)
        tree, n = shapes.get(key, (node, 0))
        shapes[key] = (tree, n + 1)
    traces = []
    used: dict[str, int] = {}
    for tree, n in sorted(shapes.values(), key=lambda tn: (tn[0]["name"], _canonical(tn[0]))):
        base = f"shape_{_ident(tree['name'])}"
        used[base] = used.get(base, 0) + 1
        cid = base if used[base] == 1 else f"{base}_{used[base]}"
        traces.append({"id": cid, "root": tree["name"], "traces": {"min": 1}, "exact": True, "tree": tree})
    metrics = []
    by_name: dict[str, list[model.MetricPoint]] = {}
    for p in telemetry.metrics:
        by_name.setdefault(p.name, []).append(p)
    for mname in sorted(by_name):
        points = by_name[mname]
        shapes_m = {_canonical(_attribute_types(p.attributes)): _attribute_types(p.attributes) for p in points}
        check: dict[str, Any] = {"id": f"metric_{_ident(mname)}", "name": mname, "type": points[0].kind.value}
        check["unit"] = points[0].unit
        check["data_points"] = [{"attributes": a} if a else {} for _, a in sorted(shapes_m.items())]
        metrics.append(check)
    data: dict[str, Any] = {"version": 1, "name": name}
    if traces:
        data["traces"] = traces
    if metrics:
        data["metrics"] = metrics
    return data


def render_snapshot(telemetry: model.Telemetry, name: str = "snapshot") -> str:
    """The snapshot as YAML text (deterministic: the same shape always gives the same text)."""
    body = yaml.safe_dump(snapshot_data(telemetry, name), sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


@dataclass(frozen=True)
class SnapshotOutcome:
    """What :func:`snapshot_file` did: ``created``, ``unchanged``, ``updated`` or ``differs``."""

    status: Literal["created", "unchanged", "updated", "differs"]
    path: Path
    diff: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "differs"


def snapshot_file(path: str | Path, telemetry: model.Telemetry, *, update: bool = False,
                  name: str | None = None) -> SnapshotOutcome:
    """Create the snapshot at ``path``, or compare with the one there.

    An existing file with a different shape is left untouched and reported with a unified diff
    (``differs``) unless ``update`` is true, which rewrites it (``updated``).
    """
    p = Path(path)
    text = render_snapshot(telemetry, name or p.stem)
    if not p.exists():
        write_text_atomic(p, text)
        return SnapshotOutcome("created", p)
    old = p.read_text(encoding="utf-8")
    if old == text:
        return SnapshotOutcome("unchanged", p)
    diff = "".join(difflib.unified_diff(old.splitlines(keepends=True), text.splitlines(keepends=True),
                                        fromfile=f"{p} (recorded)", tofile=f"{p} (this run)"))
    if update:
        write_text_atomic(p, text)
        return SnapshotOutcome("updated", p, diff)
    return SnapshotOutcome("differs", p, diff)




def shape_summary(telemetry: model.Telemetry) -> Sequence[str]:
    """One line per recorded trace shape (for the CLI's messages)."""
    data = snapshot_data(telemetry)
    return [f"{t['id']}: root {t['root']!r}" for t in data.get("traces", ())]

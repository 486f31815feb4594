"""The run registry: one SQLite row per input in ``<output dir>/runs.sqlite``.

Each row keeps the input path, its checksum, the parameters (canonical JSON), the status
(``running`` | ``success`` | ``failed``), the error line, stage durations and outputs (JSON) and UTC
timestamps. ``batch --resume`` asks :meth:`RunRegistry.is_done` to skip inputs already processed
with the same checksum and parameters.

Every statement goes through a *cursor* so that ``opentelemetry-instrumentation-sqlite3`` traces it
(the connection-level ``execute`` shortcut is not traced) as a child of the current manual span.
Schema set-up runs with instrumentation suppressed so that it does not start a stray trace. A
connection is opened per operation (cheap for SQLite, and safe across worker processes); the
database is in WAL mode with a busy timeout so several processes can write.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REGISTRY_FILENAME = "runs.sqlite"
STATUS_RUNNING = "running"
STATUS_SUCCESS = "success"
STATUS_FAILED = "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    input_path TEXT PRIMARY KEY,
    checksum TEXT NOT NULL,
    parameters TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    stage_durations TEXT NOT NULL DEFAULT '{}',
    outputs TEXT NOT NULL DEFAULT '{}',
    trace_id TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
)
"""


class RegistryError(Exception):
    """The run registry cannot be opened or written."""


@dataclass(frozen=True)
class RunRecord:
    """One row of the registry, decoded."""

    input_path: str
    checksum: str
    parameters: dict[str, Any]
    status: str
    error: str | None
    stage_durations: dict[str, float]
    outputs: dict[str, str]
    trace_id: str | None
    started_at: str
    finished_at: str | None


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON: equal parameters give equal text (the resume key)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _key(input_path: str | os.PathLike[str]) -> str:
    return str(Path(input_path).resolve())


class RunRegistry:
    """SQLite run registry at ``db_path`` (see :func:`RunRegistry.in_dir`)."""

    def __init__(self, db_path: str | os.PathLike[str], *, timeout_s: float = 30.0) -> None:
        self.path = Path(db_path)
        self.timeout_s = timeout_s
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        try:
            with suppress_instrumentation(), self._connection() as conn, closing(conn.cursor()) as cur:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(_SCHEMA)
                conn.commit()
        except sqlite3.Error as exc:
            raise RegistryError(f"{self.path}: cannot open the run registry: {exc}") from exc

    @classmethod
    def in_dir(cls, output_dir: str | os.PathLike[str], **kwargs: Any) -> RunRegistry:
        """The registry ``runs.sqlite`` inside ``output_dir``."""
        return cls(Path(output_dir) / REGISTRY_FILENAME, **kwargs)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # sqlite3.connect looked up at call time: the sqlite3 instrumentation patches the module.
        conn = sqlite3.connect(str(self.path), timeout=self.timeout_s)
        try:
            yield conn
        finally:
            conn.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            with self._connection() as conn:
                cur = conn.cursor()
                try:
                    cur.execute(sql, params)
                    conn.commit()
                finally:
                    cur.close()
        except sqlite3.Error as exc:
            raise RegistryError(f"{self.path}: run registry write failed: {exc}") from exc

    def is_done(self, input_path: str | os.PathLike[str], checksum: str, parameters: Mapping[str, Any]) -> bool:
        """True if ``input_path`` already succeeded with this checksum and these parameters."""
        with self._connection() as conn, closing(conn.cursor()) as cur:
            cur.execute(
                "SELECT 1 FROM runs WHERE input_path = ? AND checksum = ? AND parameters = ? AND status = ?",
                (_key(input_path), checksum, canonical_json(parameters), STATUS_SUCCESS),
            )
            return cur.fetchone() is not None

    def start(
        self,
        input_path: str | os.PathLike[str],
        checksum: str,
        parameters: Mapping[str, Any],
        *,
        trace_id: str | None = None,
    ) -> None:
        """Insert or reset the row of ``input_path`` as ``running``."""
        self._write(
            "INSERT INTO runs (input_path, checksum, parameters, status, trace_id, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(input_path) DO UPDATE SET "
            "checksum = excluded.checksum, parameters = excluded.parameters, status = excluded.status, "
            "error = NULL, stage_durations = '{}', outputs = '{}', trace_id = excluded.trace_id, "
            "started_at = excluded.started_at, finished_at = NULL",
            (_key(input_path), checksum, canonical_json(parameters), STATUS_RUNNING, trace_id, _now()),
        )

    def finish(
        self,
        input_path: str | os.PathLike[str],
        status: str,
        *,
        checksum: str = "",
        parameters: Mapping[str, Any] | None = None,
        error: str | None = None,
        stage_durations: Mapping[str, float] | None = None,
        outputs: Mapping[str, str] | None = None,
        trace_id: str | None = None,
    ) -> None:
        """Record the outcome of ``input_path`` (creates the row if :meth:`start` never ran, e.g. a
        file that could not even be read)."""
        if status not in (STATUS_SUCCESS, STATUS_FAILED):
            raise ValueError(f"status must be {STATUS_SUCCESS!r} or {STATUS_FAILED!r}, not {status!r}")
        now = _now()
        self._write(
            "INSERT INTO runs (input_path, checksum, parameters, status, error, stage_durations, outputs, "
            "trace_id, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(input_path) DO UPDATE SET status = excluded.status, error = excluded.error, "
            "stage_durations = excluded.stage_durations, outputs = excluded.outputs, "
            "checksum = CASE WHEN excluded.checksum = '' THEN runs.checksum ELSE excluded.checksum END, "
            "trace_id = COALESCE(excluded.trace_id, runs.trace_id), finished_at = excluded.finished_at",
            (
                _key(input_path),
                checksum,
                canonical_json(parameters or {}),
                status,
                error,
                canonical_json(dict(stage_durations or {})),
                canonical_json(dict(outputs or {})),
                trace_id,
                now,
                now,
            ),
        )

    _COLUMNS = (
        "input_path, checksum, parameters, status, error, stage_durations, outputs, trace_id, "
        "started_at, finished_at"
    )

    def _select(self, where: str = "", params: tuple[Any, ...] = ()) -> list[RunRecord]:
        with self._connection() as conn, closing(conn.cursor()) as cur:
            cur.execute(f"SELECT {self._COLUMNS} FROM runs {where} ORDER BY input_path", params)
            rows = cur.fetchall()
        return [
            RunRecord(
                input_path=r[0],
                checksum=r[1],
                parameters=json.loads(r[2]),
                status=r[3],
                error=r[4],
                stage_durations=json.loads(r[5]),
                outputs=json.loads(r[6]),
                trace_id=r[7],
                started_at=r[8],
                finished_at=r[9],
            )
            for r in rows
        ]

    def records(self) -> list[RunRecord]:
        """All rows, ordered by input path."""
        return self._select()

    def get(self, input_path: str | os.PathLike[str]) -> RunRecord | None:
        """The row of ``input_path``, if any."""
        found = self._select("WHERE input_path = ?", (_key(input_path),))
        return found[0] if found else None


__all__ = [
    "REGISTRY_FILENAME",
    "STATUS_FAILED",
    "STATUS_RUNNING",
    "STATUS_SUCCESS",
    "RegistryError",
    "RunRecord",
    "RunRegistry",
    "canonical_json",
]

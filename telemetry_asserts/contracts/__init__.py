"""Declarative telemetry contracts: YAML files validated by a published JSON schema (``schema.json``),
judged by the same views and matchers as the Python API. See docs/contracts.md.

    contract = load_contract("pipeline/contract.yaml")   # ContractError names file, line and key
    result = run_contract(contract, telemetry)          # any model.Telemetry: capture, OTLP, file
    result.passed, result.score, result.failures, result.to_suite()
"""

from .check import CheckResult, ContractResult, prometheus_names, run_contract
from .load import Check, Contract, ContractError, ContractIssue, load_contract, parse_contract, schema
from .snapshot import SnapshotOutcome, render_snapshot, snapshot_data, snapshot_file

__all__ = [
    "Check",
    "CheckResult",
    "Contract",
    "ContractError",
    "ContractIssue",
    "ContractResult",
    "SnapshotOutcome",
    "load_contract",
    "parse_contract",
    "prometheus_names",
    "render_snapshot",
    "run_contract",
    "schema",
    "snapshot_data",
    "snapshot_file",
]

"""Declarative telemetry contracts: YAML files validated by a published JSON schema, checked by the
same judges (views and matchers) as the Python API. See docs/contracts.md."""

from .load import Check, Contract, ContractError, ContractIssue, load_contract, parse_contract, schema

__all__ = [
    "Check",
    "Contract",
    "ContractError",
    "ContractIssue",
    "load_contract",
    "parse_contract",
    "schema",
]

"""The pipeline's telemetry contract holds after the wire and a real collector.

    neuro-preprocess (subprocess) --OTLP gRPC | OTLP/HTTP--> rotel --OTLP/HTTP--> OtlpReceiver

The receiver serves HTTP only, so whatever the pipeline sent over gRPC reached it through the
collector. Two pipeline runs per protocol module-wide: ``process`` of two files, and ``batch`` of a
folder of two files.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import pipeline
from integration import FAST_ARGS, pipeline_env, run_pipeline, settle
from integration.collector import IMAGE_REPOSITORY
from integration.conftest import Chain, ChainFactory
from integration.prometheus import logql_filter
from telemetry_asserts.model import LogRecord, MetricPoint, Span, Telemetry

CONTRACT = Path(pipeline.__file__).with_name("contract.yaml")
PROTOCOLS = ("grpc", "http/protobuf")
LOKI_QUERY = '{service_name="neuro-preprocess"} |= "Loading file"'


@dataclass(frozen=True)
class Run:
    """One pipeline invocation and what arrived behind the collector."""

    protocol: str
    inputs: tuple[Path, ...]
    telemetry: Telemetry
    chain: Chain
    stdout: str


def _roots(t: Telemetry, name: str) -> list[Span]:
    return [s for s in t.spans if s.name == name and s.is_root]


def _arrived(n_files: int, batch: bool) -> Callable[[Telemetry], bool]:
    def predicate(t: Telemetry) -> bool:
        return (
            len(_roots(t, "process_file")) >= n_files
            and (not batch or len(_roots(t, "process_batch")) >= 1)
            and any(p.name == "neuro.files.processed" for p in t.metrics)
            and sum(str(r.body) == "Loading file" for r in t.logs) >= n_files
        )

    return predicate


def _run(chains: ChainFactory, protocol: str, args: list[str], inputs: tuple[Path, ...], out: Path, batch: bool) -> Run:
    chain = chains.chain()
    result = run_pipeline([*args, "-o", str(out), *FAST_ARGS], pipeline_env(chain.endpoint(protocol), protocol))
    assert result.returncode == 0, f"pipeline failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    telemetry = settle(chain.receiver, _arrived(len(inputs), batch))
    return Run(protocol, inputs, telemetry, chain, result.stdout)


@pytest.fixture(scope="module", params=PROTOCOLS)
def process_run(request: pytest.FixtureRequest, module_chains: ChainFactory, phantoms: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``neuro-preprocess process A B`` exporting over ``request.param``."""
    inputs = tuple(phantoms[:2])
    out = tmp_path_factory.mktemp("process-out")
    return _run(module_chains, request.param, ["process", *map(str, inputs)], inputs, out, batch=False)


@pytest.fixture(scope="module")
def batch_run(module_chains: ChainFactory, phantoms: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``neuro-preprocess batch DIR`` (BIDS-like, two subjects) exporting over OTLP/HTTP."""
    root = tmp_path_factory.mktemp("bids")
    inputs = []
    for source in phantoms[:2]:
        subject = source.name.split("_")[0]
        target = root / subject / "anat" / source.name
        target.parent.mkdir(parents=True)
        shutil.copyfile(source, target)
        inputs.append(target)
    out = tmp_path_factory.mktemp("batch-out")
    return _run(module_chains, "http/protobuf", ["batch", str(root)], tuple(inputs), out, batch=True)


# --- the contract ---------------------------------------------------------------------------------


def _contract_report(telemetry: Telemetry) -> tuple[bool, str]:
    from telemetry_asserts.contracts.check import run_contract

    assert CONTRACT.is_file(), f"the pipeline's contract {CONTRACT} is missing"
    result = run_contract(CONTRACT, telemetry)
    failures = "\n\n".join(f"[{r.id}] {r.message}" for r in result.failures)
    return result.passed, failures


def test_contract_holds_behind_the_collector(process_run: Run) -> None:
    passed, failures = _contract_report(process_run.telemetry)
    assert passed, f"contract violated after the collector ({process_run.protocol}):\n{failures}"


def test_contract_holds_for_a_batch_behind_the_collector(batch_run: Run) -> None:
    passed, failures = _contract_report(batch_run.telemetry)
    assert passed, f"contract violated after the collector (batch):\n{failures}"


# --- what must survive the hop ---------------------------------------------------------------------


def test_resource_attributes_survive(process_run: Run) -> None:
    t = process_run.telemetry
    items: list[Span | MetricPoint | LogRecord] = [*t.spans, *t.metrics, *t.logs]
    assert items
    resources = {(i.resource.attributes.get("service.name"), i.resource.attributes.get("service.version")) for i in items}
    assert resources == {("neuro-preprocess", pipeline.__version__)}
    assert all(i.resource.attributes.get("telemetry.sdk.language") == "python" for i in items)


def test_instrumentation_scope_survives(process_run: Run) -> None:
    t = process_run.telemetry
    pipeline_spans = [s for s in t.spans if s.name in ("process_file", "load_file", "process_image", "write_output")]
    assert pipeline_spans
    assert {(s.scope.name, s.scope.version) for s in pipeline_spans} == {("neuro_preprocess", pipeline.__version__)}
    assert {(p.scope.name, p.scope.version) for p in t.metrics if p.name.startswith("neuro.")} == {
        ("neuro_preprocess", pipeline.__version__)
    }


def test_metric_points_survive_with_their_identity(process_run: Run) -> None:
    t = process_run.telemetry
    files = [p for p in t.metrics if p.name == "neuro.files.processed"]
    assert {p.unit for p in files} == {"{file}"}
    latest = max(files, key=lambda p: p.time_ns)  # cumulative: the last point is the total
    assert latest.value == 2 and dict(latest.attributes) == {"status": "success"}
    durations = [p for p in t.metrics if p.name == "neuro.process.duration"]
    assert max(p.count or 0 for p in durations) == 2 and all(p.unit == "s" for p in durations)


def test_one_trace_per_file(process_run: Run) -> None:
    t = process_run.telemetry
    roots = _roots(t, "process_file")
    assert len(roots) == 2 and len({r.trace_id for r in roots}) == 2
    for root in roots:
        names = {s.name for s in t.trace(root.trace_id).spans}
        assert {"process_file", "load_file", "process_image", "write_output", "write_metadata"} <= names


def test_a_batch_keeps_one_trace_per_file_linked_to_the_batch(batch_run: Run) -> None:
    t = batch_run.telemetry
    (batch,) = _roots(t, "process_batch")
    roots = _roots(t, "process_file")
    assert len(roots) == len(batch_run.inputs)
    assert len({r.trace_id for r in roots} | {batch.trace_id}) == len(roots) + 1, "files share a trace"
    for root in roots:
        assert [(link.trace_id, link.span_id) for link in root.links] == [(batch.trace_id, batch.span_id)]
        trace_spans = t.trace(root.trace_id).spans
        assert sum(s.is_root for s in trace_spans) == 1, "a file's trace has one root"


def test_logs_arrive_correlated_with_load_file(process_run: Run) -> None:
    t = process_run.telemetry
    loading = [r for r in t.logs if str(r.body) == "Loading file"]
    assert len(loading) == 2
    load_spans = {(s.trace_id, s.span_id) for s in t.spans if s.name == "load_file"}
    for record in loading:
        assert record.is_correlated
        assert (record.trace_id, record.span_id) in load_spans, (
            f"'Loading file' {record.trace_id_hex}/{record.span_id_hex} is not inside a load_file span"
        )
        assert {"file_path", "file_exists", "file_size_mb", "array_shape"} <= set(record.attributes)


def test_loki_query_of_the_course_finds_the_loading_logs(process_run: Run) -> None:
    found = logql_filter(LOKI_QUERY, process_run.telemetry.logs)
    assert sorted(Path(str(r.attributes["file_path"])).name for r in found) == sorted(p.name for p in process_run.inputs)
    assert logql_filter('{service_name="another-service"} |= "Loading file"', process_run.telemetry.logs) == []
    assert logql_filter('{service_name="neuro-preprocess"} |= "no such line"', process_run.telemetry.logs) == []


def test_the_collector_ran_in_the_resolved_mode(process_run: Run, collector_mode: str) -> None:
    collector = process_run.chain.collector
    assert collector.mode == collector_mode and collector.running
    assert "Starting Rotel." in collector.logs()
    if collector_mode == "container":
        import docker

        client = docker.from_env()
        try:
            running = {c.image.id for c in client.containers.list()}
        finally:
            client.close()
        assert collector.image is not None and collector.image.tag.startswith(f"{IMAGE_REPOSITORY}:")
        assert collector.image.image_id in running
    # the receiver has no gRPC port: gRPC exports can only have come through the collector
    assert process_run.chain.receiver.stats.requests > 0


def test_official_collector_config_is_consistent() -> None:
    """integration/otelcol-contrib.yaml (documented, not run here): every pipeline uses defined
    components, listens on 127.0.0.1 by default, and forwards all three signals over OTLP/HTTP."""
    import yaml

    config = yaml.safe_load((Path(__file__).parent / "otelcol-contrib.yaml").read_text())
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    for name, spec in pipelines.items():
        for section in ("receivers", "processors", "exporters"):
            undefined = set(spec[section]) - set(config[section])
            assert not undefined, f"pipeline {name} uses undefined {section}: {sorted(undefined)}"
        assert spec["exporters"] == ["otlphttp"] and spec["processors"][-1] == "batch"
    for protocol in ("grpc", "http"):
        assert ":-127.0.0.1:" in config["receivers"]["otlp"]["protocols"][protocol]["endpoint"]

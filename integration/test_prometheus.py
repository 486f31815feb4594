"""The course's PromQL, answered by a real Prometheus scraping the pipeline's Prometheus exporter.

The pipeline runs as a scrape target (``OTEL_METRICS_EXPORTER=prometheus``) and processes three
inputs one at a time - good, broken, good - each step waited for in Prometheus, so counters and the
duration histogram are seen *increasing* (what ``rate()`` needs). Then the tests ask the queries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from integration.prometheus import (
    PipelineTarget,
    PrometheusError,
    PrometheusServer,
    Sample,
    by_label,
    finite,
    logql_filter,
    parse_logql,
    prometheus_config,
    sample_value,
)

STAGES = ("bias_correction", "skull_strip", "normalize", "smooth", "resample")


def _total_is(n: float) -> Callable[[list[Sample]], bool]:
    return lambda result: bool(result) and sample_value(result[0]) == n


@pytest.fixture(scope="module")
def prometheus(phantoms: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Prometheus after it scraped the pipeline through: 1 success, 1 failure, 1 more success."""
    work = tmp_path_factory.mktemp("prometheus")
    broken = work / "sub-99_T1w.nii.gz"
    broken.write_bytes(b"this is not a NIfTI file\n" * 4)
    with PipelineTarget(work / "out") as target, PrometheusServer([target.address]) as server:
        for n, (path, expected) in enumerate([(phantoms[0], "success"), (broken, "failed"), (phantoms[1], "success")], 1):
            assert target.process(path) == expected
            server.wait_for("sum(neuro_files_processed_total)", _total_is(n), timeout_s=30)
        yield server


def test_stages_executed_per_stage(prometheus: PrometheusServer) -> None:
    result = prometheus.query("sum by (stage) (neuro_stages_executed_total)")
    assert by_label(result, "stage") == {stage: 2.0 for stage in STAGES}


def test_files_processed_per_status(prometheus: PrometheusServer) -> None:
    result = prometheus.query("sum by (status) (neuro_files_processed_total)")
    assert by_label(result, "status") == {"success": 2.0, "failed": 1.0}


def test_duration_p95_from_histogram_rate(prometheus: PrometheusServer) -> None:
    p95 = prometheus.query(
        "histogram_quantile(0.95, sum by (le) (rate(neuro_process_duration_seconds_bucket[1m])))"
    )
    assert finite(p95), f"p95 is not a number: {p95}"
    # Bounded by the smallest bucket that holds every observation (read from the raw buckets).
    buckets = by_label(prometheus.query("sum by (le) (neuro_process_duration_seconds_bucket)"), "le")
    total = buckets["+Inf"]
    upper = min(float(le) for le, count in buckets.items() if count == total)
    assert 0 < sample_value(p95[0]) <= upper


def test_duration_count_matches_files(prometheus: PrometheusServer) -> None:
    result = prometheus.query("sum by (status) (neuro_process_duration_seconds_count)")
    assert by_label(result, "status") == {"success": 2.0, "failed": 1.0}


def test_series_carry_the_names_the_course_queries(prometheus: PrometheusServer) -> None:
    names = {s["metric"]["__name__"] for s in prometheus.query('count by (__name__) ({__name__=~"neuro_.*"})')}
    assert {
        "neuro_stages_executed_total",
        "neuro_files_processed_total",
        "neuro_process_duration_seconds_bucket",
        "neuro_process_duration_seconds_count",
        "neuro_process_duration_seconds_sum",
    } <= names
    assert not any(n.endswith("_executions_total") for n in names)


def test_the_contracts_prometheus_names_are_real_series(prometheus: PrometheusServer) -> None:
    """``prometheus_name`` in pipeline/contract.yaml (checked there with the exporter's naming) is what a
    real Prometheus stores."""
    import pipeline
    from telemetry_asserts.contracts import load_contract

    contract = load_contract(Path(pipeline.__file__).with_name("contract.yaml"))
    stated = {c.spec["prometheus_name"] for c in contract.checks if c.section == "metrics" and "prometheus_name" in c.spec}
    assert "neuro_stages_executed_total" in stated
    served = {s["metric"]["__name__"] for s in prometheus.query('count by (__name__) ({__name__=~"neuro_.*"})')}
    assert stated <= served, f"stated in the contract but not in Prometheus: {sorted(stated - served)}"


def test_target_resource_reaches_prometheus(prometheus: PrometheusServer) -> None:
    info = prometheus.query("target_info")
    assert [s["metric"].get("service_name") for s in info] == ["neuro-preprocess"]


def test_query_errors_name_the_query(prometheus: PrometheusServer) -> None:
    with pytest.raises(PrometheusError, match=r"sum\(.*parse error"):
        prometheus.query("sum(")


def test_wait_for_timeout_reports_last_result_and_targets(prometheus: PrometheusServer) -> None:
    with pytest.raises(PrometheusError) as info:
        prometheus.wait_for("sum(neuro_files_processed_total)", _total_is(99), timeout_s=0.5)
    message = str(info.value)
    assert "still gives" in message and "'3'" in message and "targets:" in message


# --- pure helpers (no server) -------------------------------------------------------------------


def test_config_scrapes_every_target_each_second() -> None:
    import yaml

    config = yaml.safe_load(prometheus_config(["127.0.0.1:9464", "127.0.0.1:9465"]))
    assert config["global"]["scrape_interval"] == "1s"
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9464", "127.0.0.1:9465"]


def test_finite_rejects_nan_and_empty() -> None:
    assert not finite([])
    assert not finite([{"metric": {}, "value": [0, "NaN"]}])
    assert finite([{"metric": {}, "value": [0, "0.5"]}])
    assert math.isnan(sample_value({"metric": {}, "value": [0, "NaN"]}))


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(PrometheusError, match="no `no-such-prometheus` binary on PATH"):
        PrometheusServer(["127.0.0.1:1"], binary="no-such-prometheus")


def test_logql_parse_errors_say_where() -> None:
    with pytest.raises(ValueError, match="expected a stream selector"):
        parse_logql('|= "x"')
    with pytest.raises(ValueError, match="cannot parse label matcher"):
        parse_logql("{service_name}")
    with pytest.raises(ValueError, match=r"unsupported pipeline stage at '\| json'"):
        parse_logql('{a="b"} | json')


def test_logql_selects_streams_by_resource_labels_and_filters_lines() -> None:
    from telemetry_asserts.model import LogRecord, Resource, attributes

    def record(body: str, service: str) -> LogRecord:
        return LogRecord(body=body, resource=Resource(attributes({"service.name": service, "deployment.environment": "ci"})))

    logs = [record("Loading file", "neuro-preprocess"), record("Stage completed", "neuro-preprocess"),
            record("Loading file", "grader")]
    assert logql_filter('{service_name="neuro-preprocess"} |= "Loading file"', logs) == [logs[0]]
    assert logql_filter('{service_name=~"neuro-.*", deployment_environment="ci"} != "Loading"', logs) == [logs[1]]
    assert logql_filter('{service_name!="neuro-preprocess"} |~ "^Load"', logs) == [logs[2]]
    assert logql_filter('{service_name!~"neuro.*"} !~ "file$"', logs) == []
    assert logql_filter('{service_name="neuro-preprocess"} |= "file" |= "Load"', logs) == [logs[0]]
    assert logql_filter('{service_name="a, b"}', [record("x", "a, b")])[0].body == "x"


def test_prometheus_scrapes_the_console_script_itself(phantoms: list[Path], tmp_path: Path) -> None:
    """A student's setup: ``neuro-preprocess`` with the Prometheus exporter, scraped by Prometheus.

    ``--serve-metrics-s`` keeps the endpoint up after the run so the final values are scraped;
    Ctrl-C (SIGINT) ends the wait early and the run still exits 0.
    """
    import signal
    import subprocess

    from integration import console_script, pipeline_env
    from integration.collector import free_port

    port = free_port()
    env = pipeline_env(None, OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_PORT=str(port))
    cmd = [console_script("neuro-preprocess"), "process", str(phantoms[0]), "-o", str(tmp_path / "out"),
           "--stages", "skull_strip,normalize,smooth", "--serve-metrics-s", "120"]
    with PrometheusServer([f"127.0.0.1:{port}"]) as server:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            server.wait_for("sum(neuro_files_processed_total)", _total_is(1), timeout_s=60)
            stages = by_label(server.query("sum by (stage) (neuro_stages_executed_total)"), "stage")
            assert stages == {"skull_strip": 1.0, "normalize": 1.0, "smooth": 1.0}
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"serving metrics at http://127.0.0.1:{port}/metrics for 120 s" in err

"""A real OTLP collector (rotel) for the integration stage: in a locally built container or as a process.

The collector receives OTLP over gRPC and HTTP on 127.0.0.1 and forwards everything over OTLP to one
exporter endpoint (the test-side receiver). Both modes run the same ``rotel-agent`` binary from the
installed ``rotel`` wheel:

- ``container``: an image built ``FROM scratch`` by :func:`ensure_image` (tagged by a hash of its build
  context, so an unchanged binary is never rebuilt), started by testcontainers with host networking.
- ``process``: the binary as a subprocess.

:func:`resolve_mode` reads ``NEURO_INTEGRATION_MODE`` (``container``, ``process`` or ``auto``, the
default): ``auto`` uses a container when a Docker engine answers, ``container`` makes a missing engine
a :class:`CollectorUnavailable` failure. Nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

Mode = Literal["container", "process"]

MODE_ENV = "NEURO_INTEGRATION_MODE"
IMAGE_REPOSITORY = "neuro-otel-rotel"
DOCKERFILE = Path(__file__).with_name("collector") / "Dockerfile"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BINARY_IN_IMAGE = "/usr/local/bin/rotel-agent"
READY_LINE = "Starting Rotel."

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


class CollectorUnavailable(RuntimeError):
    """The collector cannot run in the requested mode (the message says why and what to do)."""


# --- where the collector comes from -------------------------------------------------------------


def rotel_binary() -> Path:
    """The ``rotel-agent`` executable shipped inside the installed ``rotel`` wheel."""
    try:
        import rotel
    except ImportError as exc:  # pragma: no cover - rotel is a dev dependency
        raise CollectorUnavailable("the `rotel` wheel is not installed (pip install rotel==0.0.1a15)") from exc
    path = Path(rotel.__file__).with_name("rotel-agent")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise CollectorUnavailable(f"no executable rotel-agent in the rotel wheel at {path}")
    return path


def shared_libraries(binary: Path) -> list[Path]:
    """The absolute library paths ``ldd`` resolves for ``binary`` (the dynamic loader included)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    libs = [Path(m.group(1)) for line in out.splitlines() if (m := _LDD_PATH.search(line))]
    missing = [line.strip() for line in out.splitlines() if "not found" in line]
    if missing:
        raise CollectorUnavailable(f"ldd cannot resolve libraries of {binary}: {missing}")
    return libs


# --- the image ----------------------------------------------------------------------------------


def build_context(dest: Path, binary: Path | None = None) -> Path:
    """Write the image's build context into ``dest``: the Dockerfile and a ``rootfs/`` to copy as-is."""
    binary = binary or rotel_binary()
    rootfs = dest / "rootfs"
    if dest.exists():
        shutil.rmtree(dest)
    (rootfs / "tmp").mkdir(parents=True)
    os.chmod(rootfs / "tmp", 0o1777)
    _copy_file(binary, rootfs / BINARY_IN_IMAGE.lstrip("/"), mode=0o755)
    for lib in shared_libraries(binary):
        _copy_file(lib, rootfs / str(lib).lstrip("/"), mode=0o755)
    if not CA_BUNDLE.is_file():
        raise CollectorUnavailable(f"{CA_BUNDLE} is missing (apt-get install ca-certificates): rotel's otlp exporter needs it")
    _copy_file(CA_BUNDLE, rootfs / str(CA_BUNDLE).lstrip("/"), mode=0o644)
    shutil.copyfile(DOCKERFILE, dest / "Dockerfile")
    return dest


def _copy_file(src: Path, dst: Path, mode: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src.resolve(), dst)  # dereference: the image has no merged-/usr symlinks
    os.chmod(dst, mode)


def context_digest(context: Path) -> str:
    """A sha256 over every path, mode and content in ``context``: the image tag's identity."""
    digest = hashlib.sha256()
    for path in sorted(context.rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(context)}\0{stat.S_IMODE(info.st_mode):o}\0".encode())
        if path.is_file():
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageInfo:
    """The collector image: its tag, Docker image id and whether this call built it."""

    tag: str
    image_id: str
    built: bool


def ensure_image(client: Any | None = None, workdir: Path | None = None) -> ImageInfo:
    """Build the collector image unless an image with the same context hash exists already."""
    import docker
    from docker.errors import ImageNotFound

    client = client or docker.from_env()
    with tempfile.TemporaryDirectory(prefix="rotel-image-", dir=workdir) as tmp:
        context = build_context(Path(tmp) / "context")
        tag = f"{IMAGE_REPOSITORY}:{context_digest(context)[:16]}"
        try:
            return ImageInfo(tag, client.images.get(tag).id, built=False)
        except ImageNotFound:
            pass
        image, _ = client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
        return ImageInfo(tag, image.id, built=True)


# --- which mode ---------------------------------------------------------------------------------


def engine_status() -> tuple[bool, str]:
    """Whether a Docker engine answers a ping, and a one-line reason/version for logs and failures."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            client.ping()
            return True, f"Docker engine {client.version().get('Version', '?')}"
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the engine means "no engine"
        return False, f"no Docker engine answers ({type(exc).__name__}: {exc})"


def resolve_mode(requested: str | None = None) -> Mode:
    """The mode to run in, from ``requested`` or ``$NEURO_INTEGRATION_MODE`` (default ``auto``)."""
    value = (requested if requested is not None else os.environ.get(MODE_ENV, "auto")).strip().lower() or "auto"
    if value == "process":
        return "process"
    if value not in ("auto", "container"):
        raise CollectorUnavailable(f"{MODE_ENV}={value!r}: expected one of container, process, auto")
    answers, reason = engine_status()
    if answers:
        return "container"
    if value == "container":
        raise CollectorUnavailable(
            f"{MODE_ENV}=container but {reason}; start one with scripts/start_dockerd.sh "
            f"or set {MODE_ENV}=process to run the collector binary as a subprocess"
        )
    return "process"


# --- running it ---------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class CollectorSettings:
    """What the collector listens on and where it forwards.

    ``exporter_endpoint`` is the downstream receiver (``http://127.0.0.1:PORT``); ``batch_timeout`` is
    kept short so tests do not wait for rotel's batches; the retry settings bound how long the
    collector keeps re-sending to a receiver that is down.
    """

    exporter_endpoint: str
    exporter_protocol: Literal["http", "grpc"] = "http"
    grpc_port: int = 0
    http_port: int = 0
    batch_timeout: str = "50ms"
    batch_max_size: int = 8192
    request_timeout: str = "5s"
    retry_initial_backoff: str = "100ms"
    retry_max_backoff: str = "1s"
    retry_max_elapsed_time: str = "30s"
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def env(self, grpc_port: int, http_port: int, state_dir: str) -> dict[str, str]:
        """The ``ROTEL_*`` environment configuring the agent (same for both modes)."""
        return {
            "ROTEL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
            "ROTEL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
            "ROTEL_EXPORTER": "otlp",
            "ROTEL_OTLP_EXPORTER_ENDPOINT": self.exporter_endpoint,
            "ROTEL_OTLP_EXPORTER_PROTOCOL": self.exporter_protocol,
            "ROTEL_BATCH_TIMEOUT": self.batch_timeout,
            "ROTEL_BATCH_MAX_SIZE": str(self.batch_max_size),
            "ROTEL_OTLP_EXPORTER_REQUEST_TIMEOUT": self.request_timeout,
            "ROTEL_OTLP_EXPORTER_RETRY_INITIAL_BACKOFF": self.retry_initial_backoff,
            "ROTEL_OTLP_EXPORTER_RETRY_MAX_BACKOFF": self.retry_max_backoff,
            "ROTEL_OTLP_EXPORTER_RETRY_MAX_ELAPSED_TIME": self.retry_max_elapsed_time,
            "ROTEL_PID_FILE": f"{state_dir}/rotel-agent.pid",
            "ROTEL_LOG_FILE": f"{state_dir}/rotel-agent.log",
            "NO_COLOR": "1",
            **dict(self.extra_env),
        }


class RotelCollector:
    """One rotel collector on 127.0.0.1, in a container or as a process; a context manager.

    ``grpc_endpoint`` and ``http_endpoint`` are what a pipeline's ``OTEL_EXPORTER_OTLP_ENDPOINT`` gets.
    """

    def __init__(self, settings: CollectorSettings, mode: Mode, image: ImageInfo | None = None) -> None:
        if mode == "container" and image is None:
            raise ValueError("container mode needs an ImageInfo (see ensure_image)")
        self.settings = settings
        self.mode: Mode = mode
        self.image = image
        self.grpc_port = settings.grpc_port or free_port()
        self.http_port = settings.http_port or free_port()
        self._state = tempfile.mkdtemp(prefix="rotel-")
        self._container: Any = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = Path(self._state) / "stdout.log"
        self._log_offset = 0
        self._final_logs = ""  # a removed container's output, kept for messages

    # endpoints
    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def describe(self) -> str:
        """One line for logs: the mode, the image (tag and id) or the binary, and the ports."""
        where = f"image {self.image.tag} ({self.image.image_id})" if self.image else f"binary {rotel_binary()}"
        return f"rotel collector, {self.mode} mode, {where}, grpc :{self.grpc_port}, http :{self.http_port}"

    # lifecycle
    def start(self, timeout_s: float = 30.0, attempts: int = 3) -> Self:
        """Start the collector and wait until it logged readiness and both ports accept connections.

        Ports this object picked itself are re-picked (up to ``attempts`` times) if another process
        took one between picking and binding; ports given in the settings are never changed.
        """
        for attempt in range(1, attempts + 1):
            if self.mode == "container":
                self._start_container()
            else:
                self._start_process()
            try:
                self._wait_ready(timeout_s)
                return self
            except CollectorUnavailable as exc:
                lost_race = "Address already in use" in str(exc) and not (self.settings.grpc_port or self.settings.http_port)
                if not lost_race or attempt == attempts:
                    raise
                self.stop()
                self.grpc_port, self.http_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM, then kill after ``timeout_s``); idempotent."""
        if self._container is not None:
            wrapped = self._container.get_wrapped_container()
            try:
                wrapped.stop(timeout=int(timeout_s))
            finally:
                self._final_logs = self.logs()
                self._container.stop()
                self._container = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGTERM)
                try:
                    self._process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None

    def restart(self, down_s: float = 0.0, timeout_s: float = 30.0, stop_timeout_s: float = 10.0) -> None:
        """Stop (SIGTERM), stay down ``down_s`` seconds, start again on the same ports (same container)."""
        self._log_offset = len(self.logs())
        if self._container is not None:
            wrapped = self._container.get_wrapped_container()
            wrapped.stop(timeout=int(stop_timeout_s))
            time.sleep(down_s)
            wrapped.start()
        else:
            self.stop(stop_timeout_s)
            time.sleep(down_s)
            self._start_process()
        self._wait_ready(timeout_s)

    def close(self) -> None:
        """Stop and remove the collector's state directory."""
        self.stop()
        shutil.rmtree(self._state, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        if self._container is not None:
            wrapped = self._container.get_wrapped_container()
            wrapped.reload()
            return wrapped.status == "running"
        return False

    def pid(self) -> int | None:
        """The agent's pid as the host sees it (also in container mode), for RSS measurements."""
        if self._process is not None:
            return self._process.pid
        if self._container is not None:
            wrapped = self._container.get_wrapped_container()
            wrapped.reload()
            return int(wrapped.attrs["State"]["Pid"]) or None
        return None

    def rss_bytes(self) -> int:
        """Resident memory of the running agent (``VmRSS`` from /proc)."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError("collector is not running")
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for pid {pid}")

    def logs(self) -> str:
        """Everything the agent wrote to stdout/stderr so far (all starts), without colour codes."""
        if self._container is not None:
            out, err = self._container.get_logs()
            text = out.decode(errors="replace") + err.decode(errors="replace")
        elif self._log_path.exists():
            text = self._log_path.read_text(errors="replace")
        else:
            text = self._final_logs
        return _ANSI.sub("", text)

    # internals
    def _start_process(self) -> None:
        env = {**os.environ, **self.settings.env(self.grpc_port, self.http_port, self._state)}
        log = self._log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [str(rotel_binary()), "start"], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()

    def _start_container(self) -> None:
        from testcontainers.core.container import DockerContainer

        assert self.image is not None
        os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
        env = self.settings.env(self.grpc_port, self.http_port, "/tmp")
        container = DockerContainer(self.image.tag).with_kwargs(network_mode="host").with_command("start")
        container.with_envs(**env)
        self._container = container.start()

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise CollectorUnavailable(f"{self.describe()} exited during start-up:\n{self.logs()}")
            if READY_LINE in self.logs()[self._log_offset :] and all(
                _port_open(p) for p in (self.grpc_port, self.http_port)
            ):
                return
            time.sleep(0.05)
        logs = self.logs()
        self.stop()
        raise CollectorUnavailable(f"{self.describe()} not ready within {timeout_s:.0f} s:\n{logs}")


def start_collector(
    exporter_endpoint: str, mode: Mode | None = None, image: ImageInfo | None = None, **settings: Any
) -> RotelCollector:
    """Resolve the mode (building the image if needed) and start a collector forwarding to ``exporter_endpoint``."""
    mode = mode or resolve_mode()
    if mode == "container" and image is None:
        image = ensure_image()
    collector = RotelCollector(CollectorSettings(exporter_endpoint, **settings), mode, image)
    try:
        return collector.start()
    except BaseException:
        collector.close()
        raise

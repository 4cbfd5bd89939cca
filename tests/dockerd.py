"""A private Docker engine for tests and benchmarks: Debian's dockerd on its own socket.

:func:`start_dockerd` runs ``dockerd`` with its own data root, exec root, pid file and
unix socket, no networking of its own (``--bridge=none``, no iptables) and plain HTTP
allowed to loopback registries (``--insecure-registry 127.0.0.0/8``). The client side
(:meth:`DockerEngine.docker`) uses a private ``DOCKER_CONFIG``, so ``docker login`` never
touches ``~/.docker`` (which layerlab itself reads for credentials).

A data root given by the caller survives the engine, so images built once are there for
the next run (fixture caching); without one, everything lives in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

__all__ = ["DockerEngine", "start_dockerd", "docker_binaries", "DockerUnavailable",
           "DockerCommandError"]


class DockerUnavailable(RuntimeError):
    """dockerd or the docker client is not installed, or the engine did not come up."""


class DockerCommandError(subprocess.CalledProcessError):
    """A docker client command failed; its message ends with the command's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}: {self.stderr}"


def docker_binaries() -> tuple[str, str]:
    """``(dockerd, docker)``: Debian's engine, and its own client when present."""
    dockerd = shutil.which("dockerd") or ("/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None)
    client = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker")
    if dockerd is None or client is None:
        raise DockerUnavailable("dockerd / docker not installed (apt-get install docker.io)")
    return dockerd, client


@dataclass
class DockerEngine:
    """A running private dockerd; use :meth:`docker` to run client commands against it."""

    socket: Path
    data_root: Path
    exec_root: Path
    config_dir: Path
    log_path: Path
    client: str
    proc: subprocess.Popen
    _owned: list[Path] = field(default_factory=list)

    @property
    def host(self) -> str:
        """The ``DOCKER_HOST`` value of this engine."""
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """An environment for client commands (and other tools) aimed at this engine."""
        env = dict(os.environ)
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.config_dir))
        return env

    def docker(self, *args: str, check: bool = True, timeout: float = 600,
               input: bytes | None = None, env: dict[str, str] | None = None,
               capture: bool = True) -> subprocess.CompletedProcess:
        """Run ``docker ARGS`` against this engine; raises with its stderr if it fails."""
        full_env = self.env
        if env:
            full_env.update(env)
        proc = subprocess.run([self.client, *args], env=full_env, input=input,
                              capture_output=capture, timeout=timeout)
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip() if capture else ""
            raise DockerCommandError(proc.returncode, ["docker", *args],
                                                output=proc.stdout, stderr=err)
        return proc

    def stop(self) -> None:
        """Stop dockerd (and its containerd) and remove what this engine owns."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for path in self._owned:
            shutil.rmtree(path, ignore_errors=True)

    def __enter__(self) -> "DockerEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_dockerd(data_root: Path | None = None, *, extra_args: Sequence[str] = (),
                  timeout: float = 90.0) -> DockerEngine:
    """Start a private dockerd and poll its socket until it answers ``docker version``.

    ``data_root`` (kept afterwards) holds images and layers; ``extra_args`` go to dockerd
    (e.g. ``--max-concurrent-uploads=1``).
    """
    dockerd, client = docker_binaries()
    owned: list[Path] = []
    # unix socket paths are limited to 108 bytes: the exec root (containerd's sockets) and
    # our socket live in a short directory under /tmp
    run_dir = Path(tempfile.mkdtemp(prefix="lld-", dir="/tmp"))
    owned.append(run_dir)
    if data_root is None:
        data_root = Path(tempfile.mkdtemp(prefix="lld-data-"))
        owned.append(data_root)
    data_root.mkdir(parents=True, exist_ok=True)
    exec_root = run_dir / "x"
    config_dir = run_dir / "config"
    config_dir.mkdir()
    sock = run_dir / "d.sock"
    log_path = run_dir / "dockerd.log"
    cmd = [dockerd, "--data-root", str(data_root), "--exec-root", str(exec_root),
           "--pidfile", str(run_dir / "d.pid"), "-H", f"unix://{sock}",
           "--iptables=false", "--ip6tables=false", "--bridge=none",
           "--storage-driver=overlay2", "--insecure-registry", "127.0.0.0/8", *extra_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"),
                            start_new_session=True)
    engine = DockerEngine(sock, data_root, exec_root, config_dir, log_path, client, proc, owned)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            engine.stop()
            raise DockerUnavailable(f"dockerd exited with {proc.returncode}: {tail}")
        if sock.exists():
            probe = subprocess.run([client, "-H", engine.host, "version", "--format",
                                    "{{.Server.Version}}"], env=engine.env, capture_output=True)
            if probe.returncode == 0:
                return engine
        time.sleep(0.1)
    engine.stop()
    raise DockerUnavailable(f"dockerd did not answer on {sock} within {timeout:.0f} s")

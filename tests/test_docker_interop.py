"""The real Docker engine (Debian's docker.io, dockerd 20.10) against layerlab.

``docker push`` into layerlab's registry and ``docker pull`` back, ``docker pull`` of what
``layerlab push`` wrote, ``docker login`` against its htpasswd auth; and layerlab's
analyses of docker-built images equal to Docker's own figures (``docker image inspect``,
``docker history``, the legacy builder's context size), to skopeo's and to dive's.
The images are built by :mod:`docker_images` (cached between runs).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import bcrypt
import pytest

from conftest import require_tool
from docker_images import IMAGES, docker_fixtures
from dockerd import DockerEngine, start_dockerd
from test_analysis_efficiency import ours, run_dive

import layerlab
from layerlab.registry import LocalRegistry

pytestmark = [pytest.mark.interop, pytest.mark.slow]

APP_OUTPUT = b"layerlab fixture app\n200000\n"


@pytest.fixture(scope="module")
def fx():
    for tool in ("dockerd", "debootstrap"):
        require_tool(tool)
    fixtures, lock = docker_fixtures()
    yield fixtures
    fixtures.engine.stop()
    lock.release()


@pytest.fixture(scope="module")
def empty_engine(fx):
    """A second engine with no images at all: its pulls fetch every layer."""
    with start_dockerd() as engine:
        yield engine


def _inspect(engine, ref: str) -> dict:
    return json.loads(engine.docker("image", "inspect", ref).stdout)[0]


def _pushed_digest(output: bytes) -> str:
    (digest,) = re.findall(rb"digest: (sha256:[0-9a-f]{64}) size: \d+", output)
    return digest.decode()


def _layers_with_push_metadata(engine: DockerEngine, diff_ids: list[str]) -> int:
    """How many of ``diff_ids`` dockerd's v2 metadata service knows a registry digest for
    (it HEADs those before uploading them)."""
    store = engine.data_root / "image" / "overlay2" / "distribution" / "v2metadata-by-diffid"
    return sum((store / "sha256" / d.removeprefix("sha256:")).is_file() for d in diff_ids)


def _layerlab(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "layerlab", *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_docker_push_into_layerlab_and_pull_back(fx, empty_engine, tmp_path):
    source = _inspect(fx.engine, fx.tag("many"))
    known = _layers_with_push_metadata(fx.engine, source["RootFS"]["Layers"])
    with LocalRegistry(tmp_path / "registry") as registry:
        ref = f"{registry.host}/seed/many:v1"
        fx.engine.docker("tag", fx.tag("many"), ref)
        digest = _pushed_digest(fx.engine.docker("push", ref).stdout)
        image = layerlab.open_image(f"docker://{ref}")
        assert image.digest == digest
        assert image.media_type == "application/vnd.docker.distribution.manifest.v2+json"
        assert [str(layer.diff_id) for layer in image.layers] == source["RootFS"]["Layers"]
        assert image.config.digest == source["Id"]

        fx.engine.docker("rmi", ref)
        pushed = registry.log.counters()["by_kind"]
        empty_engine.docker("pull", ref)
        pulled = _inspect(empty_engine, ref)
        assert pulled["Id"] == source["Id"]
        assert pulled["RootFS"]["Layers"] == source["RootFS"]["Layers"]
        assert f"{registry.host}/seed/many@{digest}" in pulled["RepoDigests"]
        run = empty_engine.docker("run", "--rm", "--network", "none", ref)
        assert run.stdout == APP_OUTPUT
        empty_engine.docker("rmi", ref)
        fetched = registry.log.counters()["by_kind"]
    # docker 20.10's push of 12 blobs (config + 11 layers): a HEAD of the config first, a
    # HEAD before uploading each layer whose digest the engine remembers from an earlier push
    # or pull (none on a freshly built fixture), POST + one PATCH + PUT + a verifying HEAD per
    # blob, then the manifest; then layerlab's open_image (manifest + config)
    assert pushed == {"ping": 1, "blob_head": 1 + known + 12, "upload_start": 12, "upload_patch": 12,
                      "upload_put": 12, "manifest_put": 1, "manifest_get": 1, "blob_get": 1}
    # its pull on an empty engine: HEAD then GET of the manifest, every blob once
    pull = {k: fetched.get(k, 0) - pushed.get(k, 0) for k in fetched}
    assert {k: v for k, v in pull.items() if v} == {"ping": 1, "manifest_head": 1,
                                                     "manifest_get": 1, "blob_get": 12}


def test_docker_pulls_what_layerlab_pushed(fx, empty_engine, tmp_path):
    with LocalRegistry(tmp_path / "registry") as registry:
        for name in ("merged", "multistage"):
            source = _inspect(fx.engine, fx.tag(name))
            ref = f"{registry.host}/from-layerlab/{name}:v1"
            result = layerlab.push(f"docker-archive:{fx.saves[name]}", ref, progress=False)
            empty_engine.docker("pull", ref)
            pulled = _inspect(empty_engine, ref)
            assert pulled["Id"] == source["Id"]  # the same config: the same image
            assert pulled["RootFS"]["Layers"] == source["RootFS"]["Layers"]
            assert f"{registry.host}/from-layerlab/{name}@{result.manifest_digest}" in \
                pulled["RepoDigests"]
        run = empty_engine.docker("run", "--rm", "--network", "none",
                                  f"{registry.host}/from-layerlab/merged:v1")
        assert run.stdout == APP_OUTPUT
        for name in ("merged", "multistage"):
            empty_engine.docker("rmi", f"{registry.host}/from-layerlab/{name}:v1")


def test_docker_loads_and_runs_rewritten_images(fx, empty_engine, tmp_path):
    """``layerlab rewrite`` output is a real image: ``docker load`` takes it (same config
    digest and diff_ids as layerlab says), and it runs with the same files as the source
    (the merged run's overwritten and deleted files gone, owners kept)."""
    listing = ["run", "--rm", "--network", "none", "--entrypoint", "sh"]
    look = ["-c", "find /opt /usr/local/bin -exec stat -c '%n %s %U:%G %a %F' {} + | sort"]
    expected = fx.engine.docker(*listing, fx.tag("many"), *look).stdout
    assert b"/opt/app/data/blob.bin 1000000 app:app 644 regular file" in expected
    assert b"zeros.bin" not in expected
    source = f"docker-archive:{fx.saves['many']}"
    layer_counts = {}
    for name, args in {"t4": ["--target", "4"], "squash": ["--squash"],
                       "stamped": ["--merge", "1-8", "--strip-timestamps"]}.items():
        out = tmp_path / f"{name}.tar"
        data = json.loads(_layerlab("rewrite", source, f"docker-archive:{out}:rewritten:{name}",
                                    "--json", "-q", *args).stdout)
        empty_engine.docker("load", "-i", str(out))
        ref = f"rewritten:{name}"
        loaded = _inspect(empty_engine, ref)
        assert loaded["Id"] == data["result"]["config_digest"]
        assert loaded["RootFS"]["Layers"] == [layer["diff_id"] for layer in data["layers"]]
        assert empty_engine.docker("run", "--rm", "--network", "none", ref).stdout == APP_OUTPUT
        assert empty_engine.docker(*listing, ref, *look).stdout == expected
        layer_counts[name] = len(loaded["RootFS"]["Layers"])
        empty_engine.docker("rmi", ref)
    assert layer_counts == {"t4": 4, "squash": 1, "stamped": 4}


def test_docker_login_against_htpasswd(fx, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode() + "\n")
    with LocalRegistry(tmp_path / "registry", htpasswd=htpasswd) as registry:
        ref = f"{registry.host}/private/multistage:v1"
        fx.engine.docker("tag", fx.tag("multistage"), ref)
        denied = fx.engine.docker("push", ref, check=False)
        assert denied.returncode != 0
        assert b"no basic auth credentials" in denied.stderr + denied.stdout

        wrong = fx.engine.docker("login", registry.host, "-u", "alice", "--password-stdin",
                                 input=b"nope\n", check=False)
        assert wrong.returncode == 1
        assert b"401 Unauthorized" in wrong.stderr
        ok = fx.engine.docker("login", registry.host, "-u", "alice", "--password-stdin",
                              input=b"s3cret\n")
        assert b"Login Succeeded" in ok.stdout
        digest = _pushed_digest(fx.engine.docker("push", ref).stdout)
        image = layerlab.open_image(f"docker://{ref}", auth=("alice", "s3cret"))
        assert image.digest == digest
        fx.engine.docker("logout", registry.host)
        fx.engine.docker("rmi", ref)


@pytest.mark.parametrize("name", IMAGES)
def test_inspect_equals_docker_and_skopeo(fx, name):
    docker = _inspect(fx.engine, fx.tag(name))
    data = json.loads(_layerlab("inspect", "--json", f"docker-archive:{fx.saves[name]}").stdout)
    assert data["config_digest"] == docker["Id"]
    assert [layer["diff_id"] for layer in data["layers"]] == docker["RootFS"]["Layers"]
    assert data["name"] == fx.tag(name)
    config = data["config"]
    assert config["env"] == docker["Config"]["Env"]
    assert config["cmd"] == docker["Config"]["Cmd"]
    assert config["labels"] == (docker["Config"]["Labels"] or {})
    assert config["user"] == docker["Config"]["User"]
    assert config["working_dir"] == docker["Config"]["WorkingDir"]
    assert data["created"] == docker["Created"]

    skopeo = require_tool("skopeo")
    raw = json.loads(subprocess.run(
        [skopeo, "inspect", "--config", f"docker-archive:{fx.saves[name]}"],
        capture_output=True, text=True, check=True, timeout=120).stdout)
    assert [layer["diff_id"] for layer in data["layers"]] == raw["rootfs"]["diff_ids"]
    assert [h.get("created_by", "") for h in raw["history"]] == [
        h["created_by"] or "" for h in data["history"]]


@pytest.mark.parametrize("name", IMAGES)
def test_history_equals_docker_history(fx, name):
    lines = fx.engine.docker("history", "--no-trunc", "--human=false", "--format",
                             "{{json .}}", fx.tag(name)).stdout.decode().splitlines()
    docker = [json.loads(line) for line in reversed(lines)]  # oldest first, as layerlab
    data = json.loads(_layerlab("history", "--json", f"docker-archive:{fx.saves[name]}").stdout)
    sizes = {layer["index"]: layer["content_size"] for layer in data["layers"]}
    ours_rows = [(step["created_by"], sizes[step["layer"]] if step["layer"] is not None else 0,
                  step["empty_layer"]) for step in data["history"]]
    theirs = [(row["CreatedBy"], int(row["Size"]), None) for row in docker]
    assert [(c, s) for c, s, _ in ours_rows] == [(c, s) for c, s, _ in theirs]
    # docker history shows an empty step as size 0; layerlab knows it made no layer
    assert [e for _, _, e in ours_rows] == ["#(nop)" in c and "COPY" not in c for c, _, _ in ours_rows]


def test_merge_advice_names_the_steps_the_merged_file_merged(fx):
    data = json.loads(_layerlab("history", "--json", f"docker-archive:{fx.saves['many']}").stdout)
    run_steps = [layer["created_by"].removeprefix("/bin/sh -c ") for layer in data["layers"]
                 [data["runs"][0]["start"]:data["runs"][0]["end"] + 1]]
    assert [(r["start"], r["end"], r["layers"]) for r in data["runs"]] == [(1, 8, 8)]
    dockerfile = (fx.context / "Dockerfile.many").read_text().splitlines()
    first_copy = next(i for i, line in enumerate(dockerfile) if line.startswith("COPY"))
    assert run_steps == [line.removeprefix("RUN ") for line in dockerfile[:first_copy]
                         if line.startswith("RUN ")]
    # the merged file is that run as one RUN (less what later steps overwrote or deleted)
    merged_first_run = (fx.context / "Dockerfile.merged").read_text().split("\nRUN ")[1]
    for step in ("mkdir -p /opt/app/data", "seq 1 200000 > /opt/app/data/numbers.txt",
                 "head -c 1000000 /dev/urandom > /opt/app/data/blob.bin",
                 "useradd --uid 1000 --no-create-home app"):
        assert step in run_steps and step in merged_first_run
    merged_run = data["runs"][0]
    # merged, the 3 MB blob overwritten later and the 2 MB of zeros deleted later vanish
    assert merged_run["uncompressed_size"] - merged_run["merged_uncompressed_size"] > 5_000_000
    many = json.loads(_layerlab("history", "--json", f"docker-archive:{fx.saves['many']}",
                                "--target", "4").stdout)
    assert many["merged"]["layer_count"] == 4


@pytest.mark.parametrize("name", IMAGES)
def test_efficiency_equals_dive(fx, name, tmp_path):
    from layerlab.analysis import efficiency

    image = layerlab.open_image(f"docker-archive:{fx.saves[name]}")
    assert ours(efficiency(image)) == run_dive(fx.saves[name], tmp_path)


def _docker_human_size(size: int) -> str:
    """go-units' HumanSize (4 significant digits, decimal units), as the builder prints."""
    value, unit = float(size), 0
    units = ["B", "kB", "MB", "GB", "TB"]
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    return f"{value:.4g}{units[unit]}"


def test_context_equals_the_legacy_builder(fx):
    data = json.loads(_layerlab("context", str(fx.context), "-f", "Dockerfile.many",
                                "--json").stdout)
    assert _docker_human_size(data["with_dockerignore"]["tar_size"]) == fx.context_sizes["with"]
    assert _docker_human_size(data["without_dockerignore"]["tar_size"]) == \
        fx.context_sizes["without"]
    assert [item["path"] for item in data["dropped"]][:2] == ["node_modules", ".git"]

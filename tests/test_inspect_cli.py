"""``layerlab inspect``: text, --json, --verify, --platform, --list."""

from __future__ import annotations

import json
import subprocess

import pytest

from layerlab.cli import main

from conftest import require_tool
from local_images import REF_NAME, SIMPLE_LAYER, Layout, sha256, zst
from layerlab import mediatypes as mt


@pytest.fixture(scope="module")
def expected(samples):
    return json.loads((samples / "expected.json").read_text())["images"]


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["inspect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output(capsys, samples, expected):
    path = samples / "docker-archive" / "app-v1.tar"
    code, out, err = run(capsys, path)
    assert code == 0 and err == ""
    want = expected["app-v1"]["forms"]["docker-archive:docker-archive/app-v1.tar"]
    lines = out.splitlines()
    assert lines[0] == f"reference  docker-archive:{path}"
    assert lines[1] == "name       app:v1"
    assert lines[2] == (f"manifest   {want['manifest_digest']}  "
                        "(application/vnd.docker.distribution.manifest.v2+json)")
    assert lines[3] == (f"config     {want['config_digest']}  "
                        "(application/vnd.docker.container.image.v1+json)")
    assert lines[4] == "platform   linux/amd64"
    assert lines[6] == "layers     4, 245.8 kB stored, 245.8 kB uncompressed"
    table = lines[lines.index("") + 1:]
    assert table[0].split() == ["#", "DIGEST", "DIFF_ID", "SIZE", "UNCOMPRESSED", "MEDIA",
                                "TYPE", "CREATED", "BY"]
    rows = table[2:]
    assert len(rows) == 12  # 12 history steps: 4 layers and 8 without a layer
    first = rows[0].split()
    assert first[:8] == ["1", want["layers"][0]["digest"][:19], want["layers"][0]["diff_id"][:19],
                         "109.6", "kB", "109.6", "kB", "docker"]
    assert sum("(no layer)" in r for r in rows) == 8
    assert rows[-1].rstrip().endswith('CMD ["python3", "/app/main.py"]')


def test_json_output(capsys, samples, expected):
    code, out, _ = run(capsys, f"oci:{samples}/oci/family:app-v2", "--json")
    assert code == 0
    data = json.loads(out)
    want = expected["app-v2"]["forms"]["oci:oci/family:app-v2"]
    assert data["manifest_digest"] == want["manifest_digest"]
    assert data["media_type"] == mt.OCI_MANIFEST
    assert data["config_digest"] == want["config_digest"]
    assert data["platform"] == "linux/amd64"
    assert "index_digest" not in data and "verified" not in data
    assert [(x["digest"], x["diff_id"], x["size"], x["media_type"]) for x in data["layers"]] == [
        (x["digest"], x["diff_id"], x["size"], x["media_type"]) for x in want["layers"]]
    assert all(x["uncompressed_size"] is None for x in data["layers"])
    assert data["layers"][3]["created_by"].startswith("/bin/sh -c #(nop) COPY dir:")
    assert len(data["history"]) == 14
    assert data["config"]["cmd"] == ["python3", "/app/main.py", "--serve"]


def test_verify_fills_uncompressed_sizes(capsys, samples):
    code, out, _ = run(capsys, f"oci:{samples}/oci/zstd", "--verify", "--json", "--jobs", "2")
    assert code == 0
    data = json.loads(out)
    assert data["verified"] is True
    assert [x["uncompressed_size"] for x in data["layers"]] == [109568, 62464, 54272, 19456]
    assert data["uncompressed_size"] == 245760
    code, out, _ = run(capsys, f"oci:{samples}/oci/zstd", "--verify")
    assert "verified   every layer matches its digest, size and diff_id" in out


def test_platform_and_index(capsys, samples, expected):
    multi = expected["multi"]["forms"]["oci:oci/multi:latest"]
    arm = next(m for m in multi["manifests"] if m["platform"].get("variant") == "v7")
    code, out, _ = run(capsys, f"oci:{samples}/oci/multi:latest", "--platform", "linux/arm/v7",
                       "--json")
    data = json.loads(out)
    assert data["index_digest"] == multi["manifest_digest"]
    assert data["manifest_digest"] == arm["manifest_digest"]
    assert data["platform"] == "linux/arm/v7"
    code, out, _ = run(capsys, f"oci:{samples}/oci/multi:latest", "--platform", "linux/arm64")
    assert f"index      {multi['manifest_digest']}  (chose linux/arm64/v8)" in out
    code, _, err = run(capsys, f"oci:{samples}/oci/multi", "--platform", "windows/amd64")
    assert code == 2 and "no image for platform windows/amd64" in err


def test_list(capsys, samples, expected):
    code, out, _ = run(capsys, "--list", samples / "docker-archive" / "family.tar", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["base:1", "app:v1", "app:v2", "app:latest"]
    assert rows[1]["digest"] == expected["app-v1"]["forms"][
        "docker-archive:docker-archive/family.tar:app:v1"]["manifest_digest"]
    assert set(rows[0]) == {"reference", "name", "digest", "media_type", "platforms"}
    code, out, _ = run(capsys, "--list", f"oci:{samples}/oci/multi")
    lines = out.splitlines()
    assert lines[0].split() == ["REFERENCE", "NAME", "DIGEST", "MEDIA", "TYPE", "PLATFORMS"]
    assert lines[2].split()[:3] == [f"oci:{samples}/oci/multi:latest", "latest",
                                    expected["multi"]["forms"]["oci:oci/multi:latest"]["manifest_digest"][:19]]
    assert lines[2].endswith("linux/amd64, linux/arm64/v8, linux/arm/v7")


def test_warnings_are_printed(capsys, tmp_path):
    layout = Layout()
    manifest = layout.image([SIMPLE_LAYER], "zstd", media_types=[mt.OCI_LAYER_GZIP],
                            annotations={REF_NAME: "x"})
    root = layout.write(tmp_path / "l", [manifest])
    code, out, _ = run(capsys, f"oci:{root}")
    assert code == 0
    assert out.splitlines()[-1] == (f"warning: layer {sha256(zst(SIMPLE_LAYER))}: media type "
                                    "says gzip but the bytes are zstd")
    code, out, _ = run(capsys, f"oci:{root}", "--json")
    assert json.loads(out)["warnings"] == [f"layer {sha256(zst(SIMPLE_LAYER))}: media type says "
                                           "gzip but the bytes are zstd"]


def test_usage_errors(capsys, samples):
    code, _, err = run(capsys, samples / "docker-archive" / "app-v1.tar", "--username", "u")
    assert code == 2 and err == "layerlab: error: --username and --password go together\n"


def test_registry_options_reach_the_remote_source(capsys, samples, distribution):
    """Push a sample with skopeo to Distribution, inspect it with --plain-http."""
    pytest.importorskip("layerlab.sources.remote")
    skopeo = require_tool("skopeo")
    subprocess.run([skopeo, "copy", "--quiet", "--dest-tls-verify=false",
                    f"oci:{samples}/oci/family:app-v1",
                    f"docker://{distribution}/inspect/app:v1"], check=True, timeout=120)
    code, out, err = run(capsys, f"{distribution}/inspect/app:v1", "--plain-http", "--json")
    assert code == 0, err
    data = json.loads(out)
    local = json.loads(run(capsys, f"oci:{samples}/oci/family:app-v1", "--json")[1])
    assert data["config_digest"] == local["config_digest"]
    assert [x["diff_id"] for x in data["layers"]] == [x["diff_id"] for x in local["layers"]]

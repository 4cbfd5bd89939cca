"""The analyses on registry images give what they give on the same images locally.

The OCI family samples are uploaded blob by blob (bytes kept as they are) into Debian's
Distribution registry, then analysed over HTTP."""

from __future__ import annotations

import json

import pytest

from layerlab.analysis import diff, efficiency, layer_advice, shared_layers
from layerlab.cli import main
from layerlab.sources import open_image

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def registry(distribution, samples):
    from layerlab.sources.remote import RegistryClient

    blobs = samples / "oci" / "family" / "blobs" / "sha256"
    with RegistryClient(distribution, plain_http=True) as client:
        for ref, target in (("app-v1", "app:v1"), ("app-v2", "app:v2"),
                            ("wasted", "wasted:latest"), ("app24", "layers:24"),
                            ("app14", "layers:14")):
            image = open_image(f"oci:{samples}/oci/family:{ref}")
            repository, tag = target.split(":")
            for descriptor in (image.manifest.config, *image.manifest.layers):
                data = (blobs / descriptor.digest.split(":")[1]).read_bytes()
                client.upload_blob(repository, str(descriptor.digest), data)
            client.put_manifest(repository, tag, image.manifest.raw, image.manifest.media_type)
    return distribution


def remote(registry, name):
    return open_image(f"docker://{registry}/{name}", plain_http=True)


def test_efficiency_remote_equals_local(registry, samples):
    here = efficiency(open_image(f"oci:{samples}/oci/family:wasted")).to_json()
    there = efficiency(remote(registry, "wasted:latest")).to_json()
    for key in ("reference", "name"):
        here.pop(key), there.pop(key)
    assert there == here


def test_diff_files_remote_equals_local(registry, samples):
    here = diff(open_image(f"oci:{samples}/oci/family:app-v1"),
                open_image(f"oci:{samples}/oci/family:app-v2"), files=True)
    there = diff(remote(registry, "app:v1"), remote(registry, "app:v2"), files=True)
    assert there.files.to_json() == here.files.to_json()
    assert there.layers.to_json() == here.layers.to_json()


def test_history_remote(registry, samples):
    advice = layer_advice(remote(registry, "layers:24"))
    local = layer_advice(open_image(f"oci:{samples}/oci/family:app24"))
    assert advice.merged_layers(target=14) == local.merged_layers(target=14)


def test_shared_over_a_repository(registry, capsys):
    assert main(["shared", "--repo", f"{registry}/app", "--plain-http", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [i["label"] for i in data["images"]] == ["app:v1", "app:v2"]
    result = shared_layers([remote(registry, "app:v1"), remote(registry, "app:v2")])
    assert data["totals"]["deduplicated_bytes"] == result.deduplicated_bytes
    assert [i["shared_bytes"] for i in data["images"]] == [i.shared_bytes for i in result.images]


def test_cli_on_registry_refs(registry, capsys):
    assert main(["diff", f"docker://{registry}/layers:24", f"docker://{registry}/layers:14",
                 "--plain-http", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert len(data["layers"]["common"]) == 2

"""The registry client against real registries: layerlab's own and Debian's Distribution
2.8.2, both on free loopback ports, filled by ``skopeo copy`` in every manifest format."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conftest import require_tool, start_distribution
from layerlab import mediatypes as mt
from layerlab.digest import digest_bytes
from layerlab.errors import PlatformError, RegistryError
from layerlab.manifest import ImageManifest, ManifestIndex, Schema1Manifest
from layerlab.sources import list_images, open_image
from layerlab.sources.remote import (RegistryClient, load_repositories, load_repository,
                                     open_remote_image)
from layerlab.sources.remote.synthetic import push_image, push_synthetic_repository, synthetic_image, synthetic_layer
from remote_servers import SAMPLES, FrontProxy, expected, push_samples

EXPECTED = expected()
APP_V1 = EXPECTED["app-v1"]
OCI_FORM = APP_V1["forms"]["oci:oci/family:app-v1"]
LAYER_DIGESTS = [layer["digest"] for layer in OCI_FORM["layers"]]
LAYER_SIZES = [layer["size"] for layer in OCI_FORM["layers"]]
MULTI = EXPECTED["multi"]["forms"]["oci:oci/multi:latest"]


@pytest.fixture(scope="module", params=["local", "distribution"])
def registry(request, tmp_path_factory):
    """A registry holding the sample pushes, plus a logging proxy in front of it."""
    require_tool("skopeo")
    if request.param == "local":
        from layerlab.registry import LocalRegistry

        local = LocalRegistry(memory=True).start()
        host, stop = local.host, local.stop
    else:
        tmp = tmp_path_factory.mktemp("distribution-s1")
        proc, host = start_distribution(tmp, "compatibility:\n  schema1:\n    enabled: true\n")

        def stop() -> None:
            proc.terminate()
            proc.wait(timeout=10)
    try:
        push_samples(host)
        with FrontProxy(host) as proxy:
            yield SimpleNamespace(kind=request.param, host=host, proxy=proxy)
    finally:
        stop()


@pytest.fixture()
def client(registry):
    with RegistryClient(registry.host) as c:
        yield c


# --- manifests ----------------------------------------------------------------------------------
def test_oci_manifest_is_verified_and_parsed(client):
    manifest = client.get_manifest("fam", "oci")
    assert isinstance(manifest, ImageManifest)
    assert manifest.media_type == mt.OCI_MANIFEST
    assert manifest.digest == OCI_FORM["manifest_digest"]
    assert manifest.size == OCI_FORM["manifest_size"] == 871
    assert manifest.config.digest == APP_V1["config_digest"]
    assert [d.digest for d in manifest.layers] == LAYER_DIGESTS
    assert client.get_manifest("fam", manifest.digest).raw == manifest.raw


def test_schema2_manifest_and_head(client):
    manifest = client.get_manifest("fam", "v2s2")
    assert manifest.media_type == mt.DOCKER_MANIFEST_V2
    assert [d.digest for d in manifest.layers] == LAYER_DIGESTS
    assert [d.size for d in manifest.layers] == LAYER_SIZES
    assert manifest.config.digest == APP_V1["config_digest"]
    head = client.head_manifest("fam", "v2s2")
    assert (head.digest, head.size, head.media_type) == (manifest.digest, manifest.size, mt.DOCKER_MANIFEST_V2)
    assert client.head_manifest("fam", "no-such-tag") is None


def test_schema1_manifest_digest_is_the_payloads(client):
    manifest = client.get_manifest("fam", "v2s1")
    assert isinstance(manifest, Schema1Manifest)
    assert manifest.media_type == mt.DOCKER_MANIFEST_V1_SIGNED and manifest.signed
    assert manifest.digest == digest_bytes(manifest.payload)
    assert manifest.digest != digest_bytes(manifest.raw)
    assert client.head_manifest("fam", "v2s1").digest == manifest.digest
    assert client.get_manifest("fam", manifest.digest).digest == manifest.digest
    assert set(LAYER_DIGESTS) <= set(manifest.fs_layers)


def test_schema1_image_has_synthesized_config(registry, client):
    schema2 = open_remote_image(f"docker://{registry.host}/fam:v2s2")
    image = open_remote_image(f"docker://{registry.host}/fam:v2s1")
    assert [layer.digest for layer in image.layers] == LAYER_DIGESTS
    assert [layer.size for layer in image.layers] == LAYER_SIZES
    assert all(layer.diff_id is None for layer in image.layers)
    assert len(image.config.history) == APP_V1["history_count"] == 12
    assert [h.empty_layer for h in image.config.history] == [h.empty_layer for h in schema2.config.history]
    assert [layer.created_by for layer in image.layers] == [layer.created_by for layer in schema2.layers]
    assert image.config.runtime() == schema2.config.runtime()
    assert image.config.platform == schema2.config.platform
    assert image.config.digest == digest_bytes(image.config.raw)
    assert image.warnings and "synthesized" in image.warnings[0]


def test_index_platform_selection(registry, client):
    index = client.get_manifest("multi", "latest")
    assert isinstance(index, ManifestIndex)
    assert index.digest == MULTI["manifest_digest"]
    by_platform = {m["platform"]["architecture"]: m for m in MULTI["manifests"]}
    amd = open_remote_image(f"{registry.host}/multi:latest", platform="linux/amd64")
    assert amd.digest == by_platform["amd64"]["manifest_digest"]
    assert amd.index_digest == MULTI["manifest_digest"]
    assert str(amd.platform) == "linux/amd64"
    arm = open_remote_image(f"{registry.host}/multi:latest", platform="linux/arm64")
    assert arm.digest == by_platform["arm64"]["manifest_digest"]
    assert arm.config.digest == by_platform["arm64"]["config_digest"]
    assert [layer.diff_id for layer in arm.layers] == [x["diff_id"] for x in by_platform["arm64"]["layers"]]
    with pytest.raises(PlatformError, match="linux/arm64/v8"):
        open_remote_image(f"{registry.host}/multi:latest", platform="linux/s390x")


def test_unknown_manifest_and_repository_errors(registry, client):
    with pytest.raises(RegistryError) as err:
        client.get_manifest("fam", "nope")
    assert (err.value.code, err.value.status) == ("MANIFEST_UNKNOWN", 404)
    assert err.value.url == f"http://{registry.host}/v2/fam/manifests/nope"
    with pytest.raises(RegistryError) as err:
        client.list_tags("no/such/repo")
    assert (err.value.code, err.value.status) == ("NAME_UNKNOWN", 404)


# --- blobs ------------------------------------------------------------------------------------------
def test_blob_head_stream_and_ranges(client):
    digest, size = LAYER_DIGESTS[0], LAYER_SIZES[0]
    assert client.head_blob("fam", digest) == size
    assert client.head_blob("fam", "sha256:" + "0" * 64) is None
    with client.open_blob("fam", digest) as stream:
        data = stream.read()
    assert len(data) == size and digest_bytes(data) == digest
    with client.open_blob("fam", digest, byte_range=(100, 1099)) as stream:
        assert stream.read() == data[100:1100]
    with client.open_blob("fam", digest, byte_range=(size - 10, None)) as stream:
        assert stream.read() == data[-10:]
    config = client.get_blob_bytes("fam", APP_V1["config_digest"])
    assert len(config) == APP_V1["config_size"] == 2202


def test_upload_session_mount_and_delete(registry, client):
    repo, other = f"up/{registry.kind}", f"up2/{registry.kind}"
    data = bytes(range(256)) * 1000
    digest = digest_bytes(data)
    upload = client.start_upload(repo)
    assert upload.patch(data[:100_000], content_range=True) == 100_000
    assert upload.status() == 100_000
    assert upload.patch(iter([data[100_000:150_000], data[150_000:200_000]])) == 200_000
    assert upload.put(digest, data[200_000:]) == digest
    assert client.head_blob(repo, digest) == 256_000
    with client.open_blob(repo, digest) as stream:
        assert stream.read() == data
    assert client.mount_blob(other, digest, repo) is None
    assert client.head_blob(other, digest) == 256_000
    abandoned = client.start_upload(repo)
    abandoned.patch(b"partial")
    abandoned.cancel()
    small = b"hello, registry"
    client.upload_blob(repo, digest_bytes(small), small)
    assert client.head_blob(repo, digest_bytes(small)) == len(small)
    client.delete_blob(repo, digest_bytes(small))
    assert client.head_blob(repo, digest_bytes(small)) is None


def test_put_and_delete_manifest(registry, client):
    repo = f"manifests/{registry.kind}"
    image = synthetic_image([synthetic_layer({"a.txt": b"a"})], oci=True)
    digest = push_image(client, repo, "t1", image)
    assert digest == image.digest
    assert client.head_manifest(repo, "t1").digest == digest
    client.delete_manifest(repo, digest)
    assert client.head_manifest(repo, digest) is None


# --- listings ----------------------------------------------------------------------------------------
def test_tags_and_catalog_follow_link_pagination(registry):
    proxy = registry.proxy
    with RegistryClient(proxy.host) as client:
        tags = push_synthetic_repository(client, "pages/app", 7, workers=4)
        before = proxy.count("GET", r"/tags/list")
        assert sorted(client.list_tags("pages/app", page_size=3)) == sorted(tags)
        pages = proxy.count("GET", r"/tags/list") - before
        # Distribution 2.8 ignores n for tags (one page); layerlab's registry pages by 3
        assert pages == (1 if registry.kind == "distribution" else 3)
        everything = client.catalog()
        assert {"fam", "multi", "pages/app"} <= set(everything)
        before = proxy.count("GET", r"/_catalog")
        assert client.catalog(page_size=1) == everything
        assert proxy.count("GET", r"/_catalog") - before >= len(everything)


# --- images ---------------------------------------------------------------------------------------------
def test_open_image_matches_the_local_readers(registry):
    image = open_image(f"docker://{registry.host}/fam:oci")
    assert image.reference == f"docker://{registry.host}/fam:oci"
    assert image.name == "fam:oci"
    assert image.digest == OCI_FORM["manifest_digest"]
    assert image.config.digest == APP_V1["config_digest"]
    assert list(image.diff_ids) == APP_V1["diff_ids"]
    assert [layer.size for layer in image.layers] == LAYER_SIZES
    assert [layer.compression for layer in image.layers] == ["gzip"] * 4
    assert len(image.config.history) == 12
    local = open_image(f"oci:{SAMPLES / 'oci' / 'family'}:app-v1").to_json()
    remote = image.to_json()
    for key in ("reference", "name"):
        del local[key], remote[key]
    assert remote == local
    bare = open_image(f"{registry.host}/fam:v2s2")
    assert list(bare.diff_ids) == APP_V1["diff_ids"]
    assert bare.to_json()["config_digest"] == APP_V1["config_digest"]


def test_layers_are_fetched_only_when_read(registry):
    proxy = registry.proxy
    start = len(proxy.log)
    v1 = open_image(f"docker://{proxy.host}/fam:oci")
    v2 = open_image(f"docker://{proxy.host}/fam:app-v2")
    fetched = {s.path.rsplit("/", 1)[1] for s in proxy.log[start:] if "/blobs/" in s.path}
    assert fetched == {v1.config.digest, v2.config.digest}
    top = v1.layers[-1]
    diff_id, _ = top.verify()
    assert diff_id == APP_V1["diff_ids"][-1]
    names = [entry.path for entry in top.entries()]
    assert names
    fetched = [s.path.rsplit("/", 1)[1] for s in proxy.log[start:] if "/blobs/" in s.path]
    assert sorted(set(fetched)) == sorted({v1.config.digest, v2.config.digest, top.digest})


def test_file_diff_of_remote_images_streams_only_layers(registry):
    from layerlab.analysis.filediff import diff_files

    proxy = registry.proxy
    v1 = open_image(f"docker://{proxy.host}/fam:oci")
    v2 = open_image(f"docker://{proxy.host}/fam:app-v2")
    start = len(proxy.log)
    result = diff_files(v1, v2)
    assert result.to_json() == diff_files(open_image(f"oci:{SAMPLES / 'oci' / 'family'}:app-v1"),
                                          open_image(f"oci:{SAMPLES / 'oci' / 'family'}:app-v2")).to_json()
    fetched = [s.path.rsplit("/", 1)[1] for s in proxy.log[start:] if "/blobs/" in s.path]
    layers = {layer.digest for layer in v1.layers + v2.layers}
    common = {layer.digest for layer in v1.layers} & {layer.digest for layer in v2.layers}
    assert set(fetched) <= layers
    assert all(fetched.count(digest) <= 1 for digest in common)


def test_load_repository_fetches_manifests_and_configs_only(registry, capsys):
    proxy = registry.proxy
    with RegistryClient(proxy.host) as client:
        tags = push_synthetic_repository(client, "many/app", 24, workers=4)
        start = len(proxy.log)
        images = load_repository(f"{proxy.host}/many/app", workers=6, progress=False, client=client)
    assert capsys.readouterr().err == ""
    assert [image.name for image in images] == [f"many/app:{tag}" for tag in sorted(tags)]
    assert [image.digest for image in images] == [tags[tag] for tag in sorted(tags)]
    assert len({image.layers[0].digest for image in images}) == 1
    assert len({image.layers[1].digest for image in images}) == 24
    seen = proxy.log[start:]
    assert sum(1 for s in seen if s.method == "GET" and "/manifests/" in s.path) == 24
    blob_gets = [s.path.rsplit("/", 1)[1] for s in seen if s.method == "GET" and "/blobs/" in s.path]
    assert sorted(blob_gets) == sorted(image.config.digest for image in images)
    subset = load_repository(f"docker://{registry.host}/many/app", tags=["v0003", "v0001"], progress=True)
    assert [image.name for image in subset] == ["many/app:v0003", "many/app:v0001"]
    assert "many/app" in capsys.readouterr().err


def test_load_repositories_and_list_images(registry):
    images = load_repositories([f"{registry.host}/fam", f"{registry.host}/multi"], progress=False,
                               platform="linux/arm64")
    assert [image.name for image in images] == ["fam:app-v2", "fam:oci", "fam:v2s1", "fam:v2s2",
                                                "multi:latest"]
    assert images[-1].platform is not None and images[-1].platform.architecture == "arm64"
    summaries = list_images(f"docker://{registry.host}/fam")
    assert [s.name for s in summaries] == ["fam:app-v2", "fam:oci", "fam:v2s1", "fam:v2s2"]
    by_name = {s.name: s for s in summaries}
    assert by_name["fam:oci"].digest == OCI_FORM["manifest_digest"]
    assert by_name["fam:oci"].reference == f"docker://{registry.host}/fam:oci"
    assert by_name["fam:v2s1"].media_type == mt.DOCKER_MANIFEST_V1_SIGNED
    multi = list_images(f"{registry.host}/multi")
    assert multi[0].media_type == mt.OCI_INDEX
    assert multi[0].platforms == tuple(
        "/".join(p for p in (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")) if p)
        for m in MULTI["manifests"])


# --- the CLI ------------------------------------------------------------------------------------------
def test_inspect_cli_on_registry_images(registry, capsys):
    import json

    from layerlab.cli import main

    assert main(["inspect", "--json", f"docker://{registry.host}/fam:oci"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reference"] == f"docker://{registry.host}/fam:oci"
    assert data["manifest_digest"] == OCI_FORM["manifest_digest"]
    assert [layer["diff_id"] for layer in data["layers"]] == APP_V1["diff_ids"]
    assert main(["inspect", "--plain-http", "--platform", "linux/arm64", f"{registry.host}/multi:latest"]) == 0
    text = capsys.readouterr().out
    assert f"index      {MULTI['manifest_digest']}  (chose linux/arm64/v8)" in text
    assert main(["inspect", "--list", "--json", f"{registry.host}/fam"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in listed] == ["fam:app-v2", "fam:oci", "fam:v2s1", "fam:v2s2"]
    assert set(listed[0]) == {"reference", "name", "digest", "media_type", "platforms"}
    assert main(["inspect", f"docker://{registry.host}/fam:missing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"layerlab: error: GET http://{registry.host}/v2/fam/manifests/missing: "
                          "HTTP 404 MANIFEST_UNKNOWN")


def test_a_schema1_image_is_pushed_as_schema2(registry, tmp_path):
    from layerlab.pusher import push
    from layerlab.registry import LocalRegistry

    schema2 = open_remote_image(f"docker://{registry.host}/fam:v2s2")
    with LocalRegistry() as target:
        result = push(f"docker://{registry.host}/fam:v2s1", f"{target.host}/converted/app:v1",
                      progress=False, cache=False)
        back = open_remote_image(f"docker://{target.host}/converted/app:v1")
        back.verify()  # every blob hashes to its digest and decompresses to its diff_id
    assert result.media_type == back.media_type == mt.DOCKER_MANIFEST_V2
    assert [o.outcome for o in result.layers] == ["pushed"] * len(LAYER_DIGESTS)
    assert result.bytes_compressed == 0  # the gzip blobs go as stored
    assert [str(layer.digest) for layer in back.layers] == LAYER_DIGESTS
    assert back.config.diff_ids == schema2.config.diff_ids
    assert back.config.runtime() == schema2.config.runtime()
    assert back.config.platform == schema2.config.platform
    assert [h.empty_layer for h in back.config.history] == \
        [h.empty_layer for h in schema2.config.history]
    assert any("converted to schema2" in w for w in result.warnings)

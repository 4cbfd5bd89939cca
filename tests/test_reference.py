"""Image references (layerlab.reference): Docker normalisation and skopeo transports."""

from __future__ import annotations

import pytest

from layerlab.errors import ImageNotFoundError, InvalidReferenceError
from layerlab.reference import (ArchiveReference, LayoutReference, RegistryReference,
                                parse_reference, parse_registry_reference)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("ubuntu", "docker.io", "library/ubuntu", "latest", None),
    ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
    ("library/ubuntu", "docker.io", "library/ubuntu", "latest", None),
    ("user/app", "docker.io", "user/app", "latest", None),
    ("docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", None),
    ("index.docker.io/library/ubuntu:1", "docker.io", "library/ubuntu", "1", None),
    ("registry-1.docker.io/user/app", "docker.io", "user/app", "latest", None),
    ("localhost/app", "localhost", "app", "latest", None),
    ("localhost:5000/app:v1", "localhost:5000", "app", "v1", None),
    ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000", "team/app", "v1", None),
    ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
    ("ghcr.io/org/sub/app:v1.2_3-rc", "ghcr.io", "org/sub/app", "v1.2_3-rc", None),
    (f"ubuntu@{DIGEST}", "docker.io", "library/ubuntu", None, DIGEST),
    (f"localhost:5000/app:v1@{DIGEST}", "localhost:5000", "app", "v1", DIGEST),
    ("my-registry.example.com:443/a.b/c__d/e-f", "my-registry.example.com:443", "a.b/c__d/e-f",
     "latest", None),
])
def test_registry_normalisation(text, registry, repository, tag, digest):
    ref = parse_registry_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert parse_reference(text) == ref
    assert parse_reference("docker://" + text) == ref


def test_registry_reference_properties():
    ref = parse_registry_reference(f"localhost:5000/app:v1@{DIGEST}")
    assert ref.reference == DIGEST  # a digest pins, the tag is informative
    assert ref.name == "localhost:5000/app"
    assert str(ref) == f"localhost:5000/app:v1@{DIGEST}"
    assert parse_registry_reference("app").reference == "latest"
    assert str(parse_registry_reference("app")) == "docker.io/library/app:latest"
    assert ref.with_tag("v2") == RegistryReference("localhost:5000", "app", "v2", None)
    assert ref.with_digest(DIGEST).digest == DIGEST


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("Ubuntu", "invalid repository name"),
    ("app:", "invalid tag"),
    ("app:-x", "invalid tag"),
    ("app:" + "x" * 129, "invalid tag"),
    ("app@sha256:123", "invalid image reference"),
    ("app@md5:d41d8cd98f00b204e9800998ecf8427e", "invalid image reference"),
    ("host:port:x/app", "invalid registry host"),
    ("a//b", "invalid repository name"),
    ("app_/x", "invalid repository name"),
    (" app", "invalid image reference"),
])
def test_bad_registry_references(text, message):
    with pytest.raises(InvalidReferenceError, match=message):
        parse_reference(text) if text else parse_reference(text)


def test_docker_archive_references(tmp_path):
    archive = tmp_path / "img.tar"
    archive.write_bytes(b"")
    assert parse_reference(f"docker-archive:{archive}") == ArchiveReference(str(archive))
    assert parse_reference(f"docker-archive:{archive}:app:v1") == ArchiveReference(
        str(archive), name="app:v1")
    assert parse_reference(f"docker-archive:{archive}:localhost:5000/app:v1") == ArchiveReference(
        str(archive), name="localhost:5000/app:v1")
    assert parse_reference(f"docker-archive:{archive}:@2") == ArchiveReference(str(archive), index=2)
    assert str(ArchiveReference(str(archive), index=2)) == f"docker-archive:{archive}:@2"
    assert str(ArchiveReference(str(archive), name="app:v1")) == f"docker-archive:{archive}:app:v1"
    with pytest.raises(InvalidReferenceError, match="invalid image index"):
        parse_reference(f"docker-archive:{archive}:@x")


def test_archive_path_with_a_colon(tmp_path):
    odd = tmp_path / "a:b.tar"
    odd.write_bytes(b"")
    assert parse_reference(f"docker-archive:{odd}") == ArchiveReference(str(odd))
    assert parse_reference(f"docker-archive:{odd}:app:v1") == ArchiveReference(str(odd), name="app:v1")


def test_layout_references(tmp_path):
    assert parse_reference(f"oci:{tmp_path}") == LayoutReference(str(tmp_path))
    assert parse_reference(f"oci:{tmp_path}:v1") == LayoutReference(str(tmp_path), "v1")
    ref = parse_reference(f"oci-archive:{tmp_path}/x.tar:app-v1")
    assert ref == LayoutReference(f"{tmp_path}/x.tar", "app-v1", archive=True)
    assert ref.transport == "oci-archive"
    assert str(ref) == f"oci-archive:{tmp_path}/x.tar:app-v1"
    assert str(LayoutReference("d")) == "oci:d"
    # a ref may hold colons: the path is the longest existing prefix
    assert parse_reference(f"oci:{tmp_path}:docker.io/library/app:v1") == LayoutReference(
        str(tmp_path), "docker.io/library/app:v1")
    assert parse_reference("oci:/no/such/dir:v1") == LayoutReference("/no/such/dir", "v1")


def test_bare_paths_are_detected_by_content(samples):
    assert parse_reference(str(samples / "docker-archive/app-v1.tar")) == ArchiveReference(
        str(samples / "docker-archive/app-v1.tar"))
    # a Docker >= 25 archive has manifest.json too: it is a docker-archive
    assert isinstance(parse_reference(str(samples / "docker-archive/app-v1-docker25.tar")),
                      ArchiveReference)
    assert parse_reference(str(samples / "oci/family")) == LayoutReference(str(samples / "oci/family"))
    assert parse_reference(str(samples / "oci-archive/app-v1.tar")) == LayoutReference(
        str(samples / "oci-archive/app-v1.tar"), archive=True)


def test_bare_paths_that_are_not_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidReferenceError, match="not an OCI image layout"):
        parse_reference(str(tmp_path / "empty"))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InvalidReferenceError, match="not a tar archive"):
        parse_reference(str(text))
    with pytest.raises(ImageNotFoundError, match="no such file"):
        parse_reference(str(tmp_path / "missing.tar"))
    with pytest.raises(ImageNotFoundError):
        parse_reference("./missing-dir")

"""Registry manifests and configs made into :class:`~layerlab.model.Image` values.

Layers are not downloaded: each :class:`~layerlab.model.Layer` carries an opener that
streams its blob with a ``GET`` when (and only when) something reads it, so a
file-level diff of two remote images fetches just the layers it needs.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

from ... import mediatypes as mt
from ...config import HistoryEntry, ImageConfig, parse_config
from ...digest import Digest
from ...errors import LayerlabError, PlatformError, UnknownMediaTypeError
from ...manifest import ImageManifest, Manifest, ManifestIndex, Schema1Manifest, parse_manifest
from ...model import Image, ImageIndex, Layer
from ...platform import Platform, choose
from ...reference import RegistryReference, parse_reference
from .client import RegistryClient

__all__ = ["client_for", "open_remote_image", "open_remote_all", "image_from_manifest",
           "resolve_platform", "schema1_as_schema2",
           "registry_reference", "synthesize_schema1_config"]

_CLIENTS: dict[tuple, RegistryClient] = {}
_CLIENTS_LOCK = threading.Lock()
_CONFIG_LIMIT = 16 << 20


def client_for(ref: RegistryReference | str, **client_options: Any) -> RegistryClient:
    """A :class:`RegistryClient` for ``ref``'s registry, shared in-process per
    (registry, options), so connections and tokens are reused across calls."""
    registry = ref if isinstance(ref, str) else ref.registry
    key = (registry, tuple(sorted((k, v if not isinstance(v, list) else tuple(v))
                                  for k, v in client_options.items())))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = RegistryClient(registry, **client_options)
        return client


def registry_reference(ref: RegistryReference | str) -> RegistryReference:
    """Parse ``docker://host/repo:tag`` or a bare ``host/repo[:tag]`` into a registry ref."""
    if isinstance(ref, RegistryReference):
        return ref
    parsed = parse_reference(ref if ref.startswith("docker://") else "docker://" + ref)
    assert isinstance(parsed, RegistryReference)
    return parsed


def _reference_text(ref: RegistryReference) -> str:
    return f"docker://{ref}"


def _name(ref: RegistryReference) -> str:
    if ref.tag:
        return f"{ref.repository}:{ref.tag}"
    return f"{ref.repository}@{ref.digest}"


def resolve_platform(client: RegistryClient, repository: str, manifest: Manifest,
                     platform: str | Platform | None, what: str) -> tuple[Manifest, Digest | None, Platform | None]:
    """For an index or manifest list, fetch the child manifest of the wanted platform;
    return ``(manifest, index_digest, platform)``. Nested indexes are followed."""
    index_digest: Digest | None = None
    chosen: Platform | None = None
    depth = 0
    while isinstance(manifest, ManifestIndex):
        depth += 1
        if depth > 4:
            raise PlatformError(f"{what}: indexes nested deeper than 4 levels")
        if index_digest is None:
            index_digest = manifest.digest
        candidates = [(d.platform, d) for d in manifest.manifests if mt.is_manifest(d.media_type)]
        if not candidates:
            raise PlatformError(f"{what}: the index {manifest.digest} lists no image manifests")
        nested = [(p, d) for p, d in candidates if p is None and mt.is_index(d.media_type)]
        if nested and all(p is None for p, _ in candidates):
            descriptor = nested[0][1]
        else:
            descriptor = choose(candidates, platform, what)
            chosen = descriptor.platform
        manifest = client.get_manifest(repository, str(descriptor.digest))
    return manifest, index_digest, chosen


def synthesize_schema1_config(manifest: Schema1Manifest) -> tuple[ImageConfig, list[HistoryEntry]]:
    """An image config made from a schema1 manifest's ``v1Compatibility`` entries.

    Schema1 has no config blob. The newest entry carries the runtime settings
    (``config``: Env, Cmd ...), architecture, os and creation time; every entry is a
    build step. The synthesized config keeps all steps in ``history`` (throwaway steps
    with ``empty_layer``) and has no ``rootfs.diff_ids`` (schema1 does not know them).
    Its ``digest`` is the sha256 of the synthesized JSON (compact, sorted keys), which
    identifies it within layerlab only - no registry stores such a blob. Returns the
    config and the history entries of the steps that made a layer, oldest first.
    """
    steps = manifest.layers_oldest_first()
    if not steps:
        raise LayerlabError(f"schema1 manifest {manifest.digest}: no layers")
    top = dict(steps[-1].v1_compatibility)
    history = []
    for step in steps:
        v1 = step.v1_compatibility
        entry: dict[str, Any] = {"created": v1.get("created"), "created_by": step.created_by}
        if v1.get("comment"):
            entry["comment"] = v1["comment"]
        if v1.get("author"):
            entry["author"] = v1["author"]
        if step.throwaway:
            entry["empty_layer"] = True
        history.append(entry)
    document = {
        "architecture": top.get("architecture") or manifest.architecture,
        "os": top.get("os") or "linux",
        "created": top.get("created"),
        "config": top.get("config") or {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": history,
    }
    if top.get("author"):
        document["author"] = top["author"]
    if top.get("variant"):
        document["variant"] = top["variant"]
    raw = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    config = parse_config(raw, mt.DOCKER_CONFIG, what=f"schema1 manifest {manifest.digest} config")
    made = [h for h in config.history if not h.empty_layer]
    return config, made


def _opener(client: RegistryClient, repository: str, digest: Digest):
    return lambda: client.open_blob(repository, digest, verify=False)


def schema1_as_schema2(image: Image, workers: int = 4) -> Image:
    """The schema2 form of an image opened from a schema1 manifest, as skopeo and Docker
    convert on copy: every layer is read once (streamed, its blob digest checked) to
    compute the diff_id schema1 lacks; the synthesized config gets ``rootfs.diff_ids``
    (compact JSON, sorted keys: the same image always converts to the same digests);
    the manifest lists the layers as stored (gzip). Other images are returned as is."""
    if not isinstance(image.manifest, Schema1Manifest):
        return image
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, min(workers, len(image.layers)))) as pool:
        computed = list(pool.map(lambda layer: layer.verify(), image.layers))
    document = image.config.json()
    document["rootfs"] = {"type": "layers", "diff_ids": [str(d) for d, _ in computed]}
    raw = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    config = parse_config(raw, mt.DOCKER_CONFIG, what=f"{image.reference}: converted config")
    layers = tuple(replace(layer, diff_id=d, uncompressed_size=n)
                   for layer, (d, n) in zip(image.layers, computed))
    body = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_V2,
            "config": {"mediaType": mt.DOCKER_CONFIG, "size": config.size,
                       "digest": str(config.digest)},
            "layers": [{"mediaType": layer.media_type, "size": layer.size,
                        "digest": str(layer.digest)} for layer in layers]}
    manifest = parse_manifest(json.dumps(body, indent=3).encode(), mt.DOCKER_MANIFEST_V2,
                              what=f"{image.reference}: converted manifest")
    note = "schema1 manifest converted to schema2 (diff_ids computed from the layers)"
    return replace(image, manifest=manifest, config=config, layers=layers,
                   warnings=tuple(w for w in image.warnings if "diff_ids unknown" not in w)
                   + (note,))


def image_from_manifest(client: RegistryClient, ref: RegistryReference, manifest: Manifest,
                        *, config: ImageConfig | None = None, index_digest: Digest | None = None,
                        platform: Platform | None = None) -> Image:
    """The :class:`Image` of a single-platform manifest (schema2, OCI or schema1).
    ``config`` saves the fetch when the caller has it already."""
    repository = ref.repository
    warnings: list[str] = []
    if isinstance(manifest, Schema1Manifest):
        synthesized, made = synthesize_schema1_config(manifest)
        steps = [s for s in manifest.layers_oldest_first() if not s.throwaway]
        layers = tuple(
            Layer(digest=step.blob_sum, diff_id=None, size=-1, media_type=mt.DOCKER_LAYER_GZIP,
                  compression="gzip", history=entry, opener=_opener(client, repository, step.blob_sum))
            for step, entry in zip(steps, made))
        warnings.append("schema1 manifest: config synthesized from v1Compatibility; "
                        "diff_ids unknown; layer sizes from HEAD")
        layers, missing = _schema1_sizes(client, repository, layers)
        warnings.extend(f"layer {digest} is not in the registry (HEAD 404)" for digest in missing)
        return Image(reference=_reference_text(ref), manifest=manifest, config=synthesized,
                     layers=layers, name=_name(ref),
                     index_digest=index_digest, platform=platform, warnings=tuple(warnings))
    if not isinstance(manifest, ImageManifest):
        raise UnknownMediaTypeError(f"docker://{ref}: {manifest.media_type} is not an image manifest")
    if config is None:
        raw = client.get_blob_bytes(repository, manifest.config.digest, _CONFIG_LIMIT)
        config = parse_config(raw, manifest.config.media_type,
                              what=f"config {manifest.config.digest} of docker://{ref}",
                              digest=manifest.config.digest)
    diff_ids = config.diff_ids
    if len(diff_ids) != len(manifest.layers):
        warnings.append(f"config lists {len(diff_ids)} diff_ids for {len(manifest.layers)} layers")
    history = config.layer_history()
    layers = tuple(
        Layer(
            digest=d.digest,
            diff_id=diff_ids[i] if i < len(diff_ids) else None,
            size=d.size,
            media_type=d.media_type,
            compression=mt.layer_compression(d.media_type),
            history=history[i] if i < len(history) else None,
            annotations=d.annotations,
            urls=d.urls,
            opener=_opener(client, repository, d.digest),
        )
        for i, d in enumerate(manifest.layers))
    return Image(reference=_reference_text(ref), manifest=manifest, config=config, layers=layers,
                 name=_name(ref), index_digest=index_digest, platform=platform,
                 warnings=tuple(warnings))


def _schema1_sizes(client: RegistryClient, repository: str,
                   layers: tuple[Layer, ...]) -> tuple[tuple[Layer, ...], list[Digest]]:
    """Schema1 manifests carry no sizes: ask the registry (one ``HEAD`` per layer).
    Returns the layers with sizes (0 where the blob is missing) and the missing digests."""
    out, missing = [], []
    for layer in layers:
        size = client.head_blob(repository, layer.digest)
        if size is None:
            missing.append(layer.digest)
        out.append(replace(layer, size=size or 0))
    return tuple(out), missing


def open_remote_image(ref: RegistryReference | str, platform: str | Platform | None = None,
                      **client_options: Any) -> Image:
    """Open ``docker://host/repo:tag`` (or ``@sha256:...``) as an :class:`Image`.

    Only the manifest (and, for an index, the chosen child manifest) and the config
    are fetched; layers stream on demand. ``platform`` picks from an index or
    manifest list (default: this machine's). ``client_options`` go to
    :class:`RegistryClient` (``plain_http``, ``insecure``, ``auth`` ...); a ready
    ``client=`` may be passed instead.
    """
    ref = registry_reference(ref)
    client = client_options.pop("client", None) or client_for(ref, **client_options)
    manifest = client.get_manifest(ref.repository, ref.reference)
    manifest, index_digest, chosen = resolve_platform(client, ref.repository, manifest, platform,
                                                      f"docker://{ref}")
    return image_from_manifest(client, ref, manifest, index_digest=index_digest, platform=chosen)


def open_remote_all(ref: RegistryReference | str, **client_options: Any) -> Image | ImageIndex:
    """Everything ``docker://host/repo:tag`` names: an :class:`ImageIndex` with every
    platform's image (manifests and configs fetched, layers lazy) when the tag holds an
    index or manifest list, else the one image."""
    ref = registry_reference(ref)
    client = client_options.pop("client", None) or client_for(ref, **client_options)
    top = client.get_manifest(ref.repository, ref.reference)
    what = f"docker://{ref}"

    def build(manifest: Manifest, index_digest: Digest | None, platform: Platform | None,
              depth: int) -> Image | ImageIndex:
        if isinstance(manifest, ManifestIndex):
            if depth > 4:
                raise PlatformError(f"{what}: indexes nested deeper than 4 levels")
            children = []
            for child in manifest.manifests:
                if not mt.is_manifest(child.media_type):
                    raise UnknownMediaTypeError(f"{what}: the index lists {child.digest} of "
                                                f"media type {child.media_type!r}")
                children.append(build(client.get_manifest(ref.repository, str(child.digest)),
                                      manifest.digest, child.platform, depth + 1))
            return ImageIndex(f"docker://{ref}", manifest, tuple(children), _name(ref))
        return image_from_manifest(client, ref, manifest, index_digest=index_digest,
                                   platform=platform)

    return build(top, None, None, 0)

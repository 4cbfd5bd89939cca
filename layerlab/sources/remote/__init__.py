"""Images in any Docker/OCI v2 registry: the client, authentication, and readers.

>>> from layerlab.sources.remote import RegistryClient, open_remote_image, load_repository
>>> image = open_remote_image("docker://127.0.0.1:5000/app:v1")        # doctest: +SKIP
>>> images = load_repository("127.0.0.1:5000/app", workers=16)          # doctest: +SKIP

* :class:`RegistryClient` - one registry over a requests session (:mod:`.session`): manifests,
  blobs (streamed, verified, ``Range``), uploads, tag and catalog listings; Basic and
  Bearer auth; bounded retries; errors carrying the registry's error code.
* :func:`open_remote_image` / :func:`list_remote_images` - what ``open_image`` and
  ``list_images`` use for registry references.
* :func:`load_repository` - every tag of a repository, concurrently, manifests and
  configs only.
"""

from __future__ import annotations

from ..._lazy import lazy_exports

_EXPORTS = {  # imported on first use: a push needs the client, not the readers
    "MAX_MANIFEST_SIZE": "client", "MAX_PAGES": "client", "RegistryClient": "client",
    "Credentials": "credentials", "load_credentials": "credentials",
    "client_for": "image", "open_remote_all": "image", "open_remote_image": "image",
    "registry_reference": "image", "synthesize_schema1_config": "image",
    "list_remote_images": "repository", "load_repositories": "repository",
    "load_repository": "repository",
    "BlobUpload": "upload",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

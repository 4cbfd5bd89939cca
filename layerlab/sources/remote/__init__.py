"""Images in any Docker/OCI v2 registry: the client, authentication, and readers.

>>> from layerlab.sources.remote import RegistryClient, open_remote_image, load_repository
>>> image = open_remote_image("docker://127.0.0.1:5000/app:v1")        # doctest: +SKIP
>>> images = load_repository("127.0.0.1:5000/app", workers=16)          # doctest: +SKIP

* :class:`RegistryClient` - one registry over pooled keep-alive connections (:mod:`.http`): manifests,
  blobs (streamed, verified, ``Range``), uploads, tag and catalog listings; Basic and
  Bearer auth; bounded retries; errors carrying the registry's error code.
* :func:`open_remote_image` / :func:`list_remote_images` - what ``open_image`` and
  ``list_images`` use for registry references.
* :func:`load_repository` - every tag of a repository, concurrently, manifests and
  configs only.
"""

from .client import MAX_MANIFEST_SIZE, MAX_PAGES, RegistryClient
from .credentials import Credentials, load_credentials
from .image import (client_for, open_remote_all, open_remote_image, registry_reference,
                    synthesize_schema1_config)
from .repository import list_remote_images, load_repositories, load_repository
from .upload import BlobUpload

__all__ = [
    "BlobUpload", "Credentials", "MAX_MANIFEST_SIZE", "MAX_PAGES", "RegistryClient",
    "client_for", "list_remote_images", "load_credentials", "load_repositories",
    "load_repository", "open_remote_all", "open_remote_image", "registry_reference", "synthesize_schema1_config",
]

"""The pusher: get images into registries fast, or the way historical clients did.

>>> import layerlab
>>> result = layerlab.push("docker-archive:app.tar", "127.0.0.1:5000/app:v1")  # doctest: +SKIP
>>> result.to_frame(); result.plot()                                              # doctest: +SKIP

* :func:`push` - an image (or any reference) to a registry repository;
* :func:`copy` - between any two transports (registry, OCI layout/archive, docker-archive);
* :class:`PushResult` - the events (a timeline), per-layer outcomes and totals;
* :class:`PushProfile` / :data:`PROFILES` - ``fast`` (default), ``docker``,
  ``docker-1.7``, ``serial``: settings that replay how clients pushed over the years;
* :class:`DigestCache` - the local diff_id -> compressed digest cache.
"""

from .api import copy, push
from .cache import CacheWarning, DigestCache
from .profiles import PROFILES, PushProfile, get_profile
from .result import EVENT_COLUMNS, LayerOutcome, PushEvent, PushResult

__all__ = ["push", "copy", "PushResult", "PushEvent", "LayerOutcome", "PushProfile",
           "PROFILES", "get_profile", "DigestCache", "CacheWarning", "EVENT_COLUMNS"]


"""A local OCI distribution (Docker v2) registry for experiments and tests.

Small enough to start in-process (``with LocalRegistry() as reg:``), complete enough for
skopeo, Docker, containerd and crane, and instrumented: every request is logged with the
time spent hashing and storing, and knobs (blob-descriptor cache, verification by
re-reading, bandwidth limit, added latency) can be turned between pushes.

The server side depends only on :mod:`layerlab.digest`, :mod:`layerlab.mediatypes`,
:mod:`layerlab.errors` and :mod:`layerlab.units`.
"""

from .log import RequestLog, RequestRecord
from .server import LocalRegistry
from .storage import GCResult, RegistryStorage

__all__ = ["LocalRegistry", "RequestLog", "RequestRecord", "GCResult", "RegistryStorage"]

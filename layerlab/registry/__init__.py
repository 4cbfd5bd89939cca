"""A local OCI distribution (Docker v2) registry for experiments and tests.

Small enough to start in-process (``with LocalRegistry() as reg:``), complete enough for
skopeo, Docker, containerd and crane, and instrumented: every request is logged with the
time spent hashing and storing, and knobs (blob-descriptor cache, verification by
re-reading, bandwidth limit, added latency) can be turned between pushes.

The server side depends only on :mod:`layerlab.digest`, :mod:`layerlab.mediatypes`,
:mod:`layerlab.errors` and :mod:`layerlab.units`.

HTTP is aiohttp's (its C parser, streamed request bodies, ``sendfile`` for blob GETs,
an event loop that runs in a background thread next to a notebook's): with blob bytes
hashed and written in worker threads it is faster than Distribution 2.8.2 on every case
of ``benchmarks/bench_registry.py`` and uses well under its CPU.
"""

from .log import RequestLog, RequestRecord
from .server import LocalRegistry
from .storage import GCResult, RegistryStorage

__all__ = ["LocalRegistry", "RequestLog", "RequestRecord", "GCResult", "RegistryStorage"]

"""A bounded soak of layerlab's registry (issue 15): benchmarks/soak_registry.py's engine,
32 connections for a few seconds against one root, with the online gc running.

The full figures (60 s, 40 connections, side by side with Distribution 2.8.2) come from
running ``benchmarks/soak_registry.py`` itself; this test keeps the invariants."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import soak_registry  # noqa: E402

pytestmark = pytest.mark.slow

CONNECTIONS = 32
DURATION_S = 7.0  # with start-up and the final verification, about 12 s on 2 CPUs


@pytest.mark.timeout(120)
def test_soak_keeps_every_tag_and_blob_and_bounds_descriptors(tmp_path):
    result = soak_registry.run_soak("layerlab", tmp_path, duration=DURATION_S,
                                    connections=CONNECTIONS, offline_gc=False)
    problems = result.tally.failures + result.live.mismatches
    assert result.tally.five_xx == 0, problems
    assert result.tally.failure_count == 0, problems
    assert result.failures == 0, (problems, result.server_stderr)
    ops = result.tally.ops
    for kind in ("push image", "push index", "delete manifest", "abandon session", "pull",
                 "blob monolithic", "blob chunked", "blob mount"):
        assert ops[kind] > 0, (kind, dict(ops))  # the mix ran, every kind of it

    live = result.live
    assert live.tags_total > 0 and live.tags_ok == live.tags_total
    assert live.gone_ok == live.gone_total
    assert live.manifests_ok == live.manifests_total
    assert live.deleted_ok == live.deleted_total
    assert live.tag_lists_ok == live.tag_lists_total
    assert live.blobs_total > 0 and live.blobs_ok == live.blobs_total

    start, _, end = result.fd
    # The end sample is taken with the 32 worker connections still open (one socket
    # each), just after the verification's 8 blob connections closed (the server may
    # not have seen them go yet); upload sessions hold no descriptor between requests,
    # and 8 more leave room for a commit or the periodic gc in progress.  A descriptor
    # leaked per upload session or per request would exceed this by hundreds.
    assert end <= start + CONNECTIONS + 16, result.fd
    # observed about 70 MB; a leak of upload buffers (hundreds of MB went through) would show
    assert result.rss_mb[1] < 400, result.rss_mb

"""The pull-cost model: exact arithmetic on hand-computable pulls, the warm-node rules of
each client, lazy bytes, the result's views, the CLI, and one real pull through the
validation code path (bytes and requests exactly; never timings)."""

from __future__ import annotations

import json
import math

import pytest

from conftest import require_tool
from layerlab.cli import main
from layerlab.simulator import Network
from layerlab.simulator.machine import DEFAULT_MACHINE, MachineProfile
from layerlab.simulator.pull import (PING_BYTES, TOC_BYTES_PER_ENTRY, ZSTD_CHUNKED_FOOTER,
                                     Node, PullFile, PullLayer, PullProfile, chain_ids,
                                     get_pull_profile, layer_plan, lazy_bytes, simulate_pull)

MB = 1_000_000
INF = math.inf
# a machine whose only costs are the ones a test names
BARE = MachineProfile(sha256_rate=INF, disk_rate=INF, registry_request_overhead=0.0,
                      client_request_overhead=0.0, decompress_rate={"gzip": 100 * MB,
                                                                    "zstd": 400 * MB})
BLOB3 = PullProfile("blob3", 3, "blob", unpack=False, temp_file=False)


def layers(*sizes_mb: float, ratio: float = 2.0, compression: str = "gzip") -> list[PullLayer]:
    return [PullLayer(int(s * MB), int(s * MB * ratio), compression, digest=f"sha256:d{i}",
                      diff_id=f"sha256:u{i}", name=f"l{i}") for i, s in enumerate(sizes_mb)]


def pull(specs, **kw):
    kw.setdefault("machine", BARE)
    kw.setdefault("manifest_bytes", 0)
    kw.setdefault("config_bytes", 0)
    return simulate_pull(specs, **kw)


# -- arithmetic ------------------------------------------------------------------------------
def test_three_layers_three_downloads_share_the_link():
    result = pull(layers(100, 100, 100), network=Network(100 * MB), profile=BLOB3)
    assert result.total == pytest.approx(3.0, abs=1e-9)
    assert [row["end"] for row in result.layers] == pytest.approx([3.0, 3.0, 3.0])
    assert result.bytes_downloaded == 300 * MB
    assert result.requests == 5  # manifest, config, three blobs
    assert result.dominant_phase == "download"


def test_unequal_layers_finish_in_turn():
    # 3 share 100 MB/s: the 50 MB one ends at 1.5 s; 2 share: the 100 MB one ends 1 s
    # later; the last 50 MB of the 150 MB one alone: 0.5 s more
    result = pull(layers(50, 100, 150), network=Network(100 * MB, 0.01), profile=BLOB3)
    ends = [row["end"] for row in result.layers]
    assert ends == pytest.approx([0.03 + 1.5, 0.03 + 2.5, 0.03 + 3.0])
    assert result.phases["manifest"]["critical"] == pytest.approx(0.01)
    assert result.phases["config"]["critical"] == pytest.approx(0.01)
    assert result.total == pytest.approx(3.03)


def test_one_download_at_a_time_pays_each_round_trip():
    profile = BLOB3.with_options(max_concurrent_downloads=1)
    result = pull(layers(100, 100, 100), network=Network(100 * MB, 0.01), profile=profile)
    assert result.total == pytest.approx(0.02 + 3 * (0.01 + 1.0))


def test_per_connection_cap():
    result = pull(layers(100, 100, 100), network=Network(100 * MB, per_connection=20 * MB),
                  profile=BLOB3)
    assert result.total == pytest.approx(5.0)


def test_docker_extracts_in_order_after_each_download():
    # 200 MB uncompressed per layer at 100 MB/s of gzip output: 2 s per extract
    result = pull(layers(100, 100, 100), network=Network(100 * MB, 0.01),
                  profile=get_pull_profile("docker").with_options(ping=False))
    extracts = [e for e in result.events if e.phase == "extract"]
    assert [(e.start, e.end) for e in extracts] == [
        pytest.approx((3.03, 5.03)), pytest.approx((5.03, 7.03)), pytest.approx((7.03, 9.03))]
    assert result.total == pytest.approx(9.03)
    assert result.phases["extract"]["critical"] == pytest.approx(6.0)
    assert result.dominant_phase == "extract"
    serial = pull(layers(100, 100, 100), network=Network(100 * MB, 0.01),
                  profile=get_pull_profile("docker").with_options(ping=False,
                                                                  max_concurrent_downloads=1))
    # downloads end at 1.03, 2.04, 3.05; extracts chain from the first: 1.03 + 3 * 2
    assert serial.total == pytest.approx(7.03)
    critical = [(e.layer, e.phase) for e in serial.critical_path]
    assert critical == [("image", "manifest"), ("image", "config"), ("l0", "download"),
                        ("l0", "extract"), ("l1", "extract"), ("l2", "extract")]


def test_zstd_decompresses_faster():
    gzip = pull(layers(100), network=Network(100 * MB), profile="docker")
    zstd = pull(layers(100, compression="zstd"), network=Network(100 * MB), profile="docker")
    assert gzip.phases["extract"]["critical"] == pytest.approx(2.0)
    assert zstd.phases["extract"]["critical"] == pytest.approx(0.5)


def test_extract_is_the_slower_of_cpu_and_disk():
    machine = BARE.with_options(sha256_rate=200 * MB, disk_rate=150 * MB)
    result = pull(layers(100), network=Network(INF), profile="docker", machine=machine)
    # cpu: 200/100 + 200/200 = 3 s; disk: (100 temp + 200 files) / 150 = 2 s; the
    # download writes the temp file at 150 MB/s: 100/150 s
    assert result.phases["extract"]["critical"] == pytest.approx(3.0)
    assert result.phases["download"]["critical"] == pytest.approx(100 / 150)


def test_inline_decompression_paces_the_download():
    # 100 MB of gzip (200 MB out) on an unlimited link: decompressing 200 MB at 100 MB/s
    # and hashing the diff_id at 200 MB/s on one thread: 2 + 1 s; written at 400 MB/s
    machine = BARE.with_options(sha256_rate=200 * MB, disk_rate=400 * MB)
    profile = get_pull_profile("layerlab-archive")
    result = pull(layers(100), network=Network(INF), profile=profile, machine=machine)
    # the thread also hashes the 100 MB downloaded: 0.5 s more
    assert result.total == pytest.approx(3.5)
    zstd = pull(layers(100, compression="zstd"), network=Network(INF), profile=profile,
                machine=machine)
    assert zstd.total == pytest.approx(0.5 + 0.5 + 1.0)


def test_fixed_and_per_request_costs_and_ping():
    profile = BLOB3.with_options(start_cost=0.1, request_cost=0.005, ping=True)
    result = pull(layers(100), network=Network(100 * MB, 0.01), profile=profile,
                  manifest_bytes=1000, config_bytes=500)
    # start, ping, manifest, config, blob: 4 requests of 15 ms; bodies 1 MB/s... 100 MB
    assert result.requests == 4
    assert result.bytes_downloaded == 100 * MB + 1500 + PING_BYTES
    assert result.total == pytest.approx(0.1 + 4 * 0.015 + (100 * MB + 1500 + PING_BYTES) / (100 * MB))


def test_token_bucket_burst():
    profile = BLOB3.with_options(max_concurrent_downloads=1)
    # idle 10 ms before each body: 10 ms of 100 MB/s (1 MB) each passes at once
    result = pull(layers(10, 10), network=Network(100 * MB, 0.01), profile=profile, burst=0.02)
    assert result.total == pytest.approx(0.02 + 2 * (0.01 + 0.09))
    parallel = pull(layers(10, 10, 10), network=Network(100 * MB, 0.01), profile=BLOB3,
                    burst=0.02)
    assert parallel.total == pytest.approx(0.03 + (30 - 1) / 100)  # the first wave shares 1 MB


def test_byte_cost_paces_all_streams_together():
    profile = BLOB3.with_options(byte_cost=1 / (50 * MB))
    result = pull(layers(100, 100), network=Network(INF), profile=profile)
    assert result.total == pytest.approx(4.0)


# -- warm nodes ---------------------------------------------------------------------------------
def outcomes(specs, node, profile):
    return [p.outcome for p in layer_plan(specs, node, get_pull_profile(profile))]


def test_blob_clients_skip_by_stored_digest_only():
    specs = layers(10, 10, 10)
    node = Node(layers={"sha256:d1"})
    assert outcomes(specs, node, "skopeo") == ["downloaded", "present", "downloaded"]
    assert outcomes(specs, Node(layers={"sha256:u1"}), "layerlab") == ["downloaded"] * 3
    result = pull(specs, node=node, network=Network(10 * MB), profile="layerlab")
    assert result.bytes_downloaded == 20 * MB
    assert result.bytes_skipped == 10 * MB


def test_docker_needs_the_whole_chain():
    specs = layers(10, 10, 10)
    held = Node.holding(specs[:2])
    assert outcomes(specs, held, "docker") == ["present", "present", "downloaded"]
    # the diff_id of layer 1 without layer 0: its chain is not there
    assert outcomes(specs, Node(layers={"sha256:u1"}), "docker") == ["downloaded"] * 3
    # with layer 0: layer 1 is unpacked, but under a diff_id Docker cannot know from the
    # digest: downloaded, then found registered (no extract)
    plans = layer_plan(specs, Node(layers={"sha256:d0", "sha256:u1"}), get_pull_profile("docker"))
    assert [(p.outcome, p.extract) for p in plans] == [
        ("present", False), ("downloaded", False), ("downloaded", True)]
    # the same diff_id over another base: another chain
    other = [PullLayer(10 * MB, 20 * MB, digest="sha256:x0", diff_id="sha256:other"), specs[1]]
    assert outcomes(specs, Node.holding(other), "docker") == ["downloaded"] * 3
    assert outcomes(specs, Node.holding(other), "skopeo") == ["downloaded", "present", "downloaded"]


def test_recompressed_layers_docker_downloads_without_extracting():
    gzip = layers(10, 10)
    zstd = [PullLayer(8 * MB, 20 * MB, "zstd", digest=f"sha256:z{i}", diff_id=l.diff_id,
                      name=f"z{i}") for i, l in enumerate(gzip)]
    plans = layer_plan(zstd, Node.holding(gzip), get_pull_profile("docker"))
    assert [(p.download, p.extract) for p in plans] == [(True, False), (True, False)]
    result = pull(zstd, node=Node.holding(gzip), network=Network(10 * MB), profile="docker")
    assert "extract" not in result.phases
    assert chain_ids(zstd) == chain_ids(gzip)


def test_containerd_content_store_and_snapshots_apart():
    specs = layers(10, 10)
    blobs_only = Node(blobs={"sha256:d0", "sha256:d1"})
    assert outcomes(specs, blobs_only, "containerd") == ["unpacked", "unpacked"]
    result = pull(specs, node=blobs_only, network=Network(10 * MB), profile="containerd")
    assert result.bytes_downloaded == 0
    assert result.phases["extract"]["critical"] == pytest.approx(0.4)  # 2 x 20 MB / 100 MB/s


def test_chain_ids_follow_docker():
    import hashlib

    specs = layers(1, 1)
    second = "sha256:" + hashlib.sha256(b"sha256:u0 sha256:u1").hexdigest()
    assert chain_ids(specs) == ["sha256:u0", second]


# -- lazy pulls ---------------------------------------------------------------------------------
def chunked(name="c", files=(("a", 1 * MB), ("b", 2 * MB), ("c", 1 * MB)), digest="sha256:c"):
    return PullLayer(1 * MB, 4 * MB, "zstd", "zstd:chunked", digest=digest, name=name,
                     files=tuple(PullFile(p, s) for p, s in files))


def test_lazy_bytes_are_toc_and_ranges_of_the_files_read():
    toc, fetch, ranges, unc, fetched, reused = lazy_bytes(chunked(), ["a", "/c", "x"])
    assert toc == ZSTD_CHUNKED_FOOTER + 3 * TOC_BYTES_PER_ENTRY
    assert (fetch, ranges, unc, fetched, reused) == (500_000, 2, 2 * MB, 2, 0)
    assert lazy_bytes(chunked(), ["a", "c"], node_files=["a"])[1:] == (250_000, 1, MB, 1, 1)
    known = PullLayer(1 * MB, 4 * MB, "gzip", "estargz",
                      files=(PullFile("a", MB, compressed=123_456),), toc_size=999)
    assert lazy_bytes(known, ["a"])[:2] == (51 + 999, 123_456)
    located = PullLayer(1 * MB, 4 * MB, "zstd", "zstd:chunked", toc_size=700, footer_size=0,
                        files=(PullFile("a", MB),))
    assert lazy_bytes(located, ["a"])[:2] == (700, 250_000)
    result = pull([located], profile="stargz", files_read=["a"], network=Network(10 * MB))
    assert result.requests == 2 + 1 + 1  # manifest, config; the TOC alone; one range
    assert result.bytes_downloaded == 700 + 250_000


def test_zstd_chunked_annotations_locate_the_toc(samples):
    import dataclasses

    from layerlab.simulator.pull import pull_layers
    from layerlab.sources import open_image

    image = open_image(f"docker-archive:{samples / 'docker-archive' / 'app14.tar'}")
    first = dataclasses.replace(image.layers[0], annotations={
        "io.containers.zstd-chunked.manifest-position": "1000:321:4000:1",
        "io.containers.zstd-chunked.manifest-checksum": "sha256:" + "0" * 64})
    second = dataclasses.replace(image.layers[1], annotations={
        "containerd.io/snapshot/stargz/toc.digest": "sha256:" + "1" * 64})
    specs = pull_layers(dataclasses.replace(image, layers=(first, second) + image.layers[2:]),
                        files_read=[])
    assert (specs[0].lazy_format, specs[0].toc_size, specs[0].footer_size) == ("zstd:chunked", 321, 0)
    assert (specs[1].lazy_format, specs[1].toc_size, specs[1].footer_size) == ("estargz", None, None)
    assert specs[0].files and all(f.size >= 0 for f in specs[0].files)
    assert specs[2].lazy_format == "" and specs[2].files == ()


def test_lazy_pull_by_profile():
    specs = [chunked()]
    stargz = pull(specs, profile="stargz", files_read=["a", "c"], network=Network(10 * MB))
    assert stargz.layers[0]["outcome"] == "lazy"
    assert stargz.bytes_downloaded == ZSTD_CHUNKED_FOOTER + 300 + 500_000
    assert stargz.requests == 2 + 2 + 2  # manifest, config; footer, TOC; 1 range per GET
    podman = pull(specs, profile="podman-chunked", files_read=["a", "c"],
                  node=Node(files={"a"}), network=Network(10 * MB))
    assert podman.bytes_downloaded == ZSTD_CHUNKED_FOOTER + 300 + 250_000
    assert podman.requests == 2 + 2 + 1
    assert podman.layers[0]["files_reused"] == 1
    whole = pull(specs, profile="stargz", network=Network(10 * MB))  # no list: all of it
    assert whole.bytes_downloaded == MB
    docker = pull(specs, profile="docker", files_read=["a"], network=Network(10 * MB))
    assert docker.bytes_downloaded == MB + PING_BYTES  # not a lazy client


def test_lazy_upper_layer_provides_a_path():
    lower = chunked("low", (("a", MB), ("b", MB)), "sha256:low")
    upper = chunked("up", (("a", 2 * MB),), "sha256:up")
    result = pull([lower, upper], profile="stargz", files_read=["a"], network=Network(10 * MB))
    fetched = {row["layer"]: row["files_fetched"] for row in result.layers}
    assert fetched == {"low": 0, "up": 1}


# -- the result ---------------------------------------------------------------------------------
def test_result_views():
    result = pull(layers(10, 20), network=Network(10 * MB, 0.01), profile="docker", label="x")
    data = result.to_json()
    assert set(data) == {"label", "profile", "total", "dominant_phase", "phases",
                         "bytes_downloaded", "bytes_skipped", "requests", "layers",
                         "critical_path", "events", "inputs"}
    assert set(data["layers"][0]) == {"layer", "digest", "diff_id", "size", "uncompressed_size",
                                      "compression", "lazy_format", "outcome",
                                      "bytes_downloaded", "files_fetched", "files_reused",
                                      "start", "end", "download", "sync", "toc", "fetch",
                                      "extract"}
    assert json.loads(json.dumps(data)) == data
    assert sum(v["critical"] for v in result.phases.values()) == pytest.approx(result.total)
    frame = result.to_frame()
    assert list(frame.columns)[:3] == ["layer", "diff_id", "phase"]
    assert len(frame) == len(result.events)
    assert "simulated pull" in result._repr_html_()
    figure = result.plot()
    assert {trace.name for trace in figure.data} == {"manifest", "config", "download", "extract"}


def test_image_input_and_machine_backward_compatible(samples):
    from layerlab.sources import open_image

    image = open_image(f"docker-archive:{samples / 'docker-archive' / 'app14.tar'}")
    result = simulate_pull(image, profile="skopeo", network=Network(10 * MB))
    assert result.bytes_downloaded == (sum(layer.size for layer in image.layers)
                                       + image.manifest.size + image.config.size + PING_BYTES)
    old = DEFAULT_MACHINE.to_json()
    for key in ("decompress_rate", "fsync_rate", "registry_send_rate"):
        old.pop(key)
    loaded = MachineProfile.from_json(old)
    assert loaded.decompress_speed("gzip") == DEFAULT_MACHINE.decompress_speed("gzip")
    assert loaded.registry_send_rate == INF
    scaled = DEFAULT_MACHINE.with_options(probe_rate=100.0).under_load(50.0, 2.0)
    assert scaled.decompress_speed("zstd") == DEFAULT_MACHINE.decompress_speed("zstd") / 2
    with pytest.raises(ValueError, match="unknown pull profile"):
        get_pull_profile("nope")
    with pytest.raises(ValueError, match="max_concurrent_downloads"):
        BLOB3.with_options(max_concurrent_downloads=0)


def test_seed_twin():
    from layerlab.simulator.pull_scenarios import pull_seed_story, seed_pull_layers

    story = pull_seed_story()
    rows = {row["step"]: row for row in story.rows()}
    assert list(rows) == ["cold-24", "cold-14", "warm-base", "zstd", "lazy"]
    l14 = seed_pull_layers(14)
    overhead = 2 * 1000 + PING_BYTES  # manifest and config (assumed), the ping
    assert rows["cold-14"]["bytes_downloaded"] == sum(layer.size for layer in l14) + overhead
    assert rows["warm-base"]["bytes_downloaded"] == sum(layer.size for layer in l14[4:]) + overhead
    assert rows["lazy"]["bytes_downloaded"] < 0.05 * rows["cold-24"]["bytes_downloaded"]
    assert rows["lazy"]["total"] < rows["zstd"]["total"] < rows["warm-base"]["total"]


# -- the command line ---------------------------------------------------------------------------
def test_cli_pull_cost(capsys, samples, tmp_path):
    ref = f"docker-archive:{samples / 'docker-archive' / 'app14.tar'}"
    base = f"docker-archive:{samples / 'docker-archive' / 'base.tar'}"
    args = ["--bandwidth", "10 MB/s", "--rtt", "5 ms", "--machine", "default"]
    assert main(["pull-cost", ref, *args, "--json"]) == 0
    cold = json.loads(capsys.readouterr().out)
    assert cold["profile"] == "docker" and len(cold["layers"]) == 14
    assert {layer["outcome"] for layer in cold["layers"]} == {"downloaded"}
    assert main(["pull-cost", ref, *args, "--node-has", base, "--json", "--jobs", "1"]) == 0
    warm = json.loads(capsys.readouterr().out)
    assert [layer["outcome"] for layer in warm["layers"]][:2] == ["present", "present"]
    assert warm["inputs"]["profile"]["max_concurrent_downloads"] == 1
    assert main(["simulate", ref, *args, "--pull", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == cold["total"]
    assert main(["simulate", ref, *args, "--pull", "--workers", "2", "--profile", "skopeo",
                 "--json"]) == 0
    aliased = json.loads(capsys.readouterr().out)
    assert aliased["profile"] == "skopeo"
    assert aliased["inputs"]["profile"]["max_concurrent_downloads"] == 2
    app = f"docker-archive:{samples / 'docker-archive' / 'app-v1.tar'}"
    assert main(["pull-cost", ref, *args, "--profile", "skopeo", "--node-has", base, app,
                 "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["inputs"]["node"]["label"] == "warm"
    assert both["bytes_skipped"] >= warm["bytes_skipped"]
    listing = tmp_path / "read.txt"
    listing.write_text("etc/app.conf\n")
    assert main(["pull-cost", ref, *args, "--profile", "stargz", "--files-read",
                 str(listing)]) == 0
    assert "predicted pull with profile stargz" in capsys.readouterr().out
    assert main(["pull-cost", "seed", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"baseline", "steps", "assumptions"}
    assert main(["pull-cost", "seed"]) == 0
    assert "zstd:chunked, lazy" in capsys.readouterr().out


def test_cli_pull_cost_errors(capsys, samples, tmp_path):
    ref = f"docker-archive:{samples / 'docker-archive' / 'app14.tar'}"
    assert main(["pull-cost", ref, "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err
    assert main(["pull-cost", ref, "--profile", "nope"]) == 2
    assert "unknown pull profile" in capsys.readouterr().err
    assert main(["pull-cost", ref, "--files-read", str(tmp_path / "missing")]) == 2
    assert main(["pull-cost", str(tmp_path / "nothing.tar")]) == 2


# -- a real pull through the validation code path -------------------------------------------------
@pytest.mark.parametrize("client", ["layerlab", "skopeo", "layerlab-archive"])
def test_real_pull_bytes_and_requests(client, local_registry, samples, tmp_path):
    if client == "skopeo":
        require_tool("skopeo")
    from layerlab.simulator.pull_validation import PullCase, _push, measure_pull, predict_case
    from layerlab.simulator.pull import pull_layers
    from layerlab.sources import open_image

    remote = _push(local_registry, open_image(f"docker-archive:{samples / 'docker-archive' / 'app14.tar'}"),
                   "t/app", "gzip")
    specs = pull_layers(remote)
    figures = {client: {"start_cost": 0.0, "byte_cost": 0.0}}
    assert [layer.uncompressed_size for layer in specs] == [
        layer.size for layer in open_image(f"docker-archive:{samples / 'docker-archive' / 'app14.tar'}").layers]
    for node in ("cold",) if client == "layerlab-archive" else ("cold", "warm"):
        run = measure_pull(local_registry, client, "t/app", "v1", tmp_path, node,
                           [layer.digest for layer in specs[7:]], bandwidth=50e6, latency=0.001)
        row = predict_case(PullCase("gzip", client, node, "50 MB/s", "1 ms"), specs,
                           remote.manifest.size, remote.config.size, [run], DEFAULT_MACHINE,
                           figures)
        assert row["bytes_measured"] == row["bytes_predicted"]
        assert row["requests_measured"] == row["requests_predicted"]
        expected = (sum(layer.size for layer in (specs if node == "cold" else specs[7:]))
                    + remote.manifest.size + remote.config.size
                    + (PING_BYTES if client == "skopeo" else 0))
        assert row["bytes_measured"] == expected


def test_zstd_chunked_pushed_layers_are_lazy(local_registry, samples):
    from layerlab.pusher import push
    from layerlab.pusher.profiles import get_profile
    from layerlab.simulator.pull import pull_layers
    from layerlab.sources import open_image

    source = open_image(f"docker-archive:{samples / 'docker-archive' / 'app14.tar'}")
    push(source, f"{local_registry.host}/t/chunked:v1", progress=False, cache=False,
         profile=get_profile("fast").with_options(compression="zstd:chunked"))
    remote = open_image(f"docker://{local_registry.host}/t/chunked:v1")
    specs = pull_layers(remote, files_read=[])  # lists each lazy layer's files
    assert {spec.lazy_format for spec in specs} == {"zstd:chunked"}
    lengths = [int(next(v for k, v in layer.annotations.items()
                        if k.endswith("manifest-position")).split(":")[1])
               for layer in remote.layers]
    assert [spec.toc_size for spec in specs] == lengths
    assert all(spec.footer_size == 0 and spec.files for spec in specs)
    result = simulate_pull(remote, profile="stargz", files_read=[], network=Network(10 * MB))
    assert result.bytes_downloaded == sum(lengths) + remote.manifest.size + remote.config.size

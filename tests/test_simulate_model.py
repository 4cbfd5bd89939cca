"""The push-cost model on cases small enough to compute by hand.

Every figure a case does not exercise is zero (or infinite), so each expected time is a
short sum written out in the test.
"""

from __future__ import annotations

import math

import pytest

from conftest import SAMPLES
from layerlab.pusher.profiles import PushProfile
from layerlab.simulator import LayerSpec, MachineProfile, Network, RegistrySettings, simulate
from layerlab.simulator.engine import Component, Parallel, Step, allocate, run

INF = math.inf
MB = 1_000_000
# config 2000 bytes, manifest 1500 bytes (the model's defaults)
CONFIG, MANIFEST = 2000, 1500

ZERO = MachineProfile(
    cores=2, compress_rate={"zlib-6": 50 * MB, "isal-1": 100 * MB},
    ratio={"zlib-6": 2.0, "isal-1": 2.0}, sha256_rate=INF, client_request_overhead=0.0,
    client_connect_cost=0.0, client_thread_join_cost=0.0,
    client_push_overhead=0.0, client_cache_write=0.0, registry_request_overhead=0.0,
    registry_lookup_cost=0.0, registry_cached_lookup_cost=0.0, registry_ingest_rate=INF,
    registry_reread_rate=100 * MB, registry_commit_rate=INF, registry_cores=1, disk_rate=INF,
    source="test")

# one layer at a time, no checks, no lookups, streamed uploads, one compression thread
PLAIN = PushProfile("plain", concurrency=1, engine="zlib", level=6, check_existing="never",
                    registry_lookup=False, mount=False, use_cache=False, upload="stream",
                    compress_threads=1, small_blob_limit=0)


def stored(size: int, name: str) -> LayerSpec:
    """A layer the source holds compressed already: sent as is."""
    return LayerSpec(size, 1.0, size=size, name=name)


def by_layer(result, phase):
    return {e.layer: (e.start, e.end) for e in result.events if e.phase == phase}


def test_allocate_shares_a_link_equally():
    assert allocate([{"net": 1.0}, {"net": 1.0}], [INF, INF], {"net": 100.0}) == [50.0, 50.0]


def test_allocate_gives_unused_share_to_others():
    # A is held by its own cap (one core, needing 1 core-second per unit): it uses 20 of
    # the link; B takes the remaining 80 of its 80 units: both run at rate 1.
    rates = allocate([{"cpu": 1.0, "net": 20.0}, {"net": 80.0}], [1.0, INF],
                     {"cpu": 2.0, "net": 100.0})
    assert rates == pytest.approx([1.0, 1.0])


def test_one_layer():
    # POST rtt, PATCH rtt + 100 MB / 100 MB/s, PUT rtt; config POST, PATCH, PUT;
    # manifest PUT
    r = simulate([stored(100 * MB, "a")], PLAIN, bandwidth="100 MB/s", rtt="10 ms",
                 machine=ZERO)
    assert by_layer(r, "upload")["a"] == pytest.approx((0.0, 1.02))
    assert by_layer(r, "commit")["a"] == pytest.approx((1.02, 1.03))
    expected = 1.03 + (0.03 + CONFIG / (100 * MB)) + (0.01 + MANIFEST / (100 * MB))
    assert r.total == pytest.approx(expected, rel=1e-12)
    assert r.requests == 7
    assert r.bytes_sent == 100 * MB + CONFIG + MANIFEST
    assert r.layers[0]["outcome"] == "pushed"
    assert r.dominant_phase == "upload"


def test_each_stored_blob_pays_the_registry_fixed_cost_on_commit():
    # test_one_layer with 5 ms per stored blob: the layer's commit and the config's
    r = simulate([stored(100 * MB, "a")], PLAIN, bandwidth="100 MB/s", rtt="10 ms",
                 machine=ZERO.with_options(registry_blob_overhead=0.005))
    assert by_layer(r, "commit")["a"] == pytest.approx((1.02, 1.035))
    expected = 1.035 + (0.035 + CONFIG / (100 * MB)) + (0.01 + MANIFEST / (100 * MB))
    assert r.total == pytest.approx(expected, rel=1e-12)


def test_a_commit_flushes_only_the_stretch_not_yet_written_back():
    # test_one_layer with a 100 MB/s commit: the whole 100 MB flush takes 1 s; a registry
    # writing back every 30 MB flushes the last 10 MB only (0.1 s); the config's 2000
    # bytes are flushed whole either way
    machine = ZERO.with_options(registry_commit_rate=100 * MB)
    whole = simulate([stored(100 * MB, "a")], PLAIN, bandwidth="100 MB/s", rtt="10 ms",
                     machine=machine)
    assert by_layer(whole, "commit")["a"] == pytest.approx((1.02, 2.03))
    every = simulate([stored(100 * MB, "a")], PLAIN, bandwidth="100 MB/s", rtt="10 ms",
                     machine=machine, registry=RegistrySettings(writeback_every=30 * MB))
    assert by_layer(every, "commit")["a"] == pytest.approx((1.02, 1.13))
    expected = 1.13 + (0.03 + 2 * CONFIG / (100 * MB)) + (0.01 + MANIFEST / (100 * MB))
    assert every.total == pytest.approx(expected, rel=1e-12)


def test_commit_bytes_is_the_last_stretch():
    from layerlab.registry.backend import WRITEBACK_EVERY
    from layerlab.simulator.inputs import LOCAL_WRITEBACK_EVERY, commit_bytes

    assert LOCAL_WRITEBACK_EVERY == WRITEBACK_EVERY
    assert RegistrySettings.local().writeback_every == WRITEBACK_EVERY
    assert [commit_bytes(n, 8) for n in (0, 5, 8, 9, 16, 17)] == [0, 5, 8, 1, 8, 1]
    assert commit_bytes(17, 0) == 17


def test_two_layers_share_the_bandwidth():
    # both bodies start at 0.02 at 50 MB/s each; the 50 MB one ends at 1.02; the rest
    # of the 100 MB one (50 MB) then goes alone at 100 MB/s: 1.52
    r = simulate([stored(100 * MB, "big"), stored(50 * MB, "small")],
                 PLAIN.with_options(concurrency=2), bandwidth="100 MB/s", rtt="10 ms",
                 machine=ZERO)
    assert by_layer(r, "upload") == {"big": pytest.approx((0.0, 1.52)),
                                      "small": pytest.approx((0.0, 1.02)),
                                      "config": pytest.approx((1.53, 1.55 + CONFIG / (100 * MB)))}
    assert by_layer(r, "commit")["small"] == pytest.approx((1.02, 1.03))
    expected = 1.53 + (0.03 + CONFIG / (100 * MB)) + (0.01 + MANIFEST / (100 * MB))
    assert r.total == pytest.approx(expected, rel=1e-12)
    # the critical path runs through the big layer and adds up to the total
    assert [(e.layer, e.phase) for e in r.critical_path][:2] == [("big", "upload"),
                                                                ("big", "commit")]
    assert sum(v["critical"] for v in r.phases.values()) == pytest.approx(r.total)


def test_head_only_repush():
    # the cache knows every layer in the repository: no lookup; 3 HEADs at once, the
    # config's HEAD, the manifest's HEAD: 3 round trips, nothing sent
    fast = PushProfile("t", concurrency=4, check_existing="always", compress_threads=1)
    layers = [stored(10 * MB, n) for n in "abc"]
    r = simulate(layers, fast, bandwidth="100 MB/s", rtt="10 ms", machine=ZERO,
                 existing="all", known="all")
    assert r.total == pytest.approx(0.03)
    assert r.requests == 5
    assert r.bytes_sent == 0
    assert [layer["outcome"] for layer in r.layers] == ["exists"] * 3
    assert {e.phase for e in r.events} == {"check", "manifest"}


def test_mount_from_another_repository():
    # the client knows the layer in "base": a mount (one round trip) instead of an upload
    docker = PushProfile("d", concurrency=1, check_existing="cached", registry_lookup=False,
                         compress_threads=1, small_blob_limit=0)
    r = simulate([stored(10 * MB, "a")], docker, bandwidth="100 MB/s", rtt="10 ms",
                 machine=ZERO, existing={"base": [0]}, repository="app")
    assert [(e.phase, e.outcome) for e in r.events][:2] == [("check", "missing"),
                                                          ("mount", "mounted")]
    assert r.layers[0]["outcome"] == "mounted"
    assert r.layers[0]["bytes_sent"] == 0


def test_proxy_buffering_to_disk():
    # the proxy takes the body at min(50 MB/s link, 200 MB/s disk) = 2 s, then forwards
    # it from disk at 200 MB/s: 0.5 s. The small config and manifest stay in memory.
    layers = [stored(100 * MB, "a")]
    plain = simulate(layers, PLAIN, bandwidth="50 MB/s", machine=ZERO)
    proxied = simulate(layers, PLAIN, bandwidth="50 MB/s", machine=ZERO,
                       registry=RegistrySettings(proxy_buffer=16 * 1024,
                                                 proxy_disk_rate=200 * MB))
    small = (CONFIG + MANIFEST) / (50 * MB)
    assert plain.total == pytest.approx(2.0 + small, rel=1e-12)
    assert proxied.total == pytest.approx(2.5 + small, rel=1e-12)
    upload = [e for e in proxied.events if e.layer == "a" and e.phase == "upload"]
    assert [(e.start, e.end) for e in upload] == [pytest.approx((0.0, 2.5))]
    assert "proxy forwards from disk" in upload[0].detail


def test_streaming_compression_is_bound_by_the_slower_side():
    # 100 MB at 50 MB/s of compression (2 s on one core) into 50 MB, a 100 MB/s link
    # (0.5 s): streamed, the compressor sets the pace; with a temporary file the two
    # run one after the other
    layers = [LayerSpec(100 * MB, 2.0, name="a")]
    small = (CONFIG + MANIFEST) / (100 * MB)
    streamed = simulate(layers, PLAIN, bandwidth="100 MB/s", machine=ZERO)
    temp = simulate(layers, PLAIN.with_options(temp_file=True), bandwidth="100 MB/s",
                    machine=ZERO)
    assert streamed.total == pytest.approx(2.0 + small, rel=1e-12)
    assert temp.total == pytest.approx(2.5 + small, rel=1e-12)
    assert by_layer(temp, "compress")["a"] == pytest.approx((0.0, 2.0))
    assert streamed.bytes_sent == 50 * MB + CONFIG + MANIFEST
    assert streamed.bytes_compressed == 100 * MB


def test_one_core_is_shared_by_two_compressions():
    # two 2-second compressions on one core: both end at 4 s
    one_core = ZERO.with_options(cores=1)
    layers = [LayerSpec(100 * MB, 2.0, name="a"), LayerSpec(100 * MB, 2.0, name="b")]
    r = simulate(layers, PLAIN.with_options(concurrency=2), machine=one_core)
    ends = {e.layer: e.end for e in r.events if e.phase == "upload" and e.layer in "ab"}
    assert ends == {"a": pytest.approx(4.0), "b": pytest.approx(4.0)}


def test_a_slow_compressor_leaves_the_link_to_the_other_upload():
    # A: 100 MB compressed 5:1 at 100 MB/s -> 1 s of one core, 20 MB/s on the link;
    # B: 80 MB stored, takes the other 80 MB/s: both bodies take exactly 1 s
    machine = ZERO.with_options(compress_rate={"zlib-6": 100 * MB})
    layers = [LayerSpec(100 * MB, 5.0, name="A", ratios={"zlib-6": 5.0}), stored(80 * MB, "B")]
    r = simulate(layers, PLAIN.with_options(concurrency=2), bandwidth="100 MB/s",
                 machine=machine)
    assert by_layer(r, "upload")["A"] == pytest.approx((0.0, 1.0))
    assert by_layer(r, "upload")["B"] == pytest.approx((0.0, 1.0))


def test_reread_verification_adds_a_pass_on_commit():
    layers = [stored(100 * MB, "a")]
    stream = simulate(layers, PLAIN, machine=ZERO)
    reread = simulate(layers, PLAIN, machine=ZERO, verify="reread")
    assert stream.total == pytest.approx(0.0)
    # 100 MB re-read at 100 MB/s, and the config's 2000 bytes
    assert reread.total == pytest.approx(1.0 + CONFIG / (100 * MB), rel=1e-12)
    assert by_layer(reread, "commit")["a"] == pytest.approx((0.0, 1.0))


def test_registry_cache_lowers_lookup_costs():
    # each HEAD, commit and manifest PUT looks blobs up: 2 ms each without the cache
    machine = ZERO.with_options(registry_lookup_cost=0.002, registry_cached_lookup_cost=0.0)
    layers = [stored(1000, "a")]
    on = simulate(layers, PLAIN, machine=machine, cache=True)
    off = simulate(layers, PLAIN, machine=machine, cache=False)
    # off: the layer's commit (1 lookup), the config's commit (1), the manifest (2)
    assert off.total - on.total == pytest.approx(4 * 0.002)


def test_docker_17_uploads_from_a_temp_file_in_one_put():
    d17 = PushProfile("d17", concurrency=1, engine="zlib", level=6, temp_file=True,
                      check_existing="cached", registry_lookup=False, mount=False,
                      upload="monolithic", compress_threads=1, small_blob_limit=0)
    r = simulate([LayerSpec(100 * MB, 2.0, name="a")], d17, bandwidth="100 MB/s",
                 rtt="10 ms", machine=ZERO, known="none")
    # compress 2 s; POST; PUT with the 50 MB body: 0.01 + 0.5
    assert by_layer(r, "compress")["a"] == pytest.approx((0.0, 2.0))
    assert by_layer(r, "upload")["a"] == pytest.approx((2.0, 2.52))
    assert "commit" not in {e.phase for e in r.events}
    # layer: POST + PUT; config: POST + PUT; manifest: PUT
    assert r.requests == 5


def test_simulation_is_deterministic():
    layers = [LayerSpec(30 * MB, 2.4, name=f"l{i}") for i in range(5)]
    a = simulate(layers, "docker", bandwidth="20 MB/s", rtt="5 ms")
    b = simulate(layers, "docker", bandwidth="20 MB/s", rtt="5 ms")
    assert a == b
    assert a.to_json() == b.to_json()


def test_a_throttle_in_the_receive_loop_adds_up_with_the_loop():
    # LocalRegistry limits bandwidth in the loop that receives: the link carries
    # 1 / (1/100 + 1/100) MB/s = 50 MB/s, so 100 MB take 2 s instead of 1 s
    machine = ZERO.with_options(registry_loop_rate=100 * MB)
    layers = [stored(100 * MB, "a")]
    plain = simulate(layers, PLAIN, bandwidth="100 MB/s", machine=machine)
    serial = simulate(layers, PLAIN, bandwidth="100 MB/s", machine=machine,
                      registry=RegistrySettings(serial_throttle=True))
    assert by_layer(plain, "upload")["a"] == pytest.approx((0.0, 1.0))
    assert by_layer(serial, "upload")["a"] == pytest.approx((0.0, 2.0))


def test_machine_under_load():
    machine = ZERO.with_options(probe_rate=200 * MB, registry_request_overhead=0.001)
    loaded = machine.under_load(100 * MB, 1.5)
    assert loaded.compress_rate["zlib-6"] == 25 * MB
    assert loaded.registry_request_overhead == pytest.approx(0.002)
    assert loaded.cpu == 1.5 and machine.cpu == 2.0
    # one 100 MB layer compressed 2:1 now takes 4 s instead of 2 s, and each of the 7
    # requests 2 ms instead of 1
    layers = [LayerSpec(100 * MB, 2.0, name="a")]
    assert simulate(layers, PLAIN, machine=machine).total == pytest.approx(2.0 + 7 * 0.001)
    assert simulate(layers, PLAIN, machine=loaded).total == pytest.approx(4.0 + 7 * 0.002)


def test_a_machine_sized_profile_checks_everything_first():
    # concurrency 0: every known layer is checked at once, 16 at a time: 20 HEADs are two
    # waves, then the config's and the manifest's HEADs
    fast = PushProfile("t", concurrency=0, check_existing="always", compress_threads=1)
    layers = [stored(MB, f"l{i}") for i in range(20)]
    r = simulate(layers, fast, rtt="10 ms", machine=ZERO, existing="all", known="all")
    assert r.total == pytest.approx(0.04)
    starts = sorted({round(e.start, 6) for e in r.events if e.phase == "check"})
    assert starts == [0.0, 0.01, 0.02]  # layers, layers, config; then the manifest


def test_allocate_serves_a_fifo_resource_in_arrival_order():
    # three steps needing the lock: the earliest takes it whole, the others wait
    demands = [{"lock": 1.0}, {"lock": 1.0}, {"lock": 1.0}]
    assert allocate(demands, [INF] * 3, {"lock": 1.0}, fifo=("lock",),
                    arrival=[0.2, 0.1, 0.3]) == [0.0, 1.0, 0.0]
    # the head can only use a quarter of it (its own cap): the next one gets the rest
    assert allocate(demands, [0.25, INF, INF], {"lock": 1.0}, fifo=("lock",),
                    arrival=[0.0, 0.1, 0.2]) == pytest.approx([0.25, 0.75, 0.0])
    # without fifo the same steps share equally
    assert allocate(demands, [INF] * 3, {"lock": 1.0}) == pytest.approx([1 / 3] * 3)


def test_a_colocated_registry_sends_and_answers_a_head_burst_one_by_one():
    # 16 HEADs at once, 1 ms of handling each under the interpreter lock, half before the
    # 10 ms round trip (sending) and half after (answering): HEAD k leaves at 0.5 (k + 1)
    # ms, its answer arrives 10 ms later and takes 0.5 ms, so it ends at 11 + 0.5 k ms.
    # Then the config's HEAD (18.5 + 0.5 + 10 + 0.5 = 29.5) and the manifest's (40.5).
    fast = PushProfile("t", concurrency=0, check_existing="always", compress_threads=1)
    layers = [stored(MB, f"l{i}") for i in range(16)]
    machine = ZERO.with_options(registry_request_overhead=0.001)
    r = simulate(layers, fast, rtt="10 ms", machine=machine, existing="all", known="all",
                 registry=RegistrySettings.local())
    ends = sorted(e.end for e in r.events if e.phase == "check" and e.layer.startswith("l"))
    assert ends == pytest.approx([0.011 + 0.0005 * k for k in range(16)])
    assert r.total == pytest.approx(0.0405)


def test_a_re_push_pays_the_client_request_cost_per_request():
    # one layer, serial: HEAD layer, HEAD config, HEAD manifest, each 10 ms + 2 ms of the
    # client's own handling, whether or not the cache knew where the blobs were.
    serial = PushProfile("t", concurrency=1, check_existing="always", compress_threads=1,
                         registry_lookup=False)
    machine = ZERO.with_options(client_request_overhead=0.002)
    for known in ("all", "none"):
        r = simulate([stored(MB, "l")], serial, rtt="10 ms", machine=machine, existing="all",
                     known=known, registry=RegistrySettings.local())
        assert r.total == pytest.approx(3 * 0.012)


def test_each_thread_connects_before_its_first_request_to_a_colocated_registry():
    # 2 layers, 2 checkers: each checker's first HEAD also starts its thread and connects
    # (2 ms under the lock, queued): checker 1 sends at 2.5 ms, checker 2 at 5 ms; the
    # answers end at 13 and 15.5 ms. The main thread connects with the config's HEAD:
    # 15.5 + 2.5 + 10 + 0.5 = 28.5, then the manifest's HEAD: + 11 = 39.5 ms.
    fast = PushProfile("t", concurrency=0, check_existing="always", compress_threads=1)
    machine = ZERO.with_options(registry_request_overhead=0.001, client_connect_cost=0.002)
    r = simulate([stored(MB, "a"), stored(MB, "b")], fast, rtt="10 ms", machine=machine,
                 existing="all", known="all", registry=RegistrySettings.local())
    ends = sorted(e.end for e in r.events if e.phase == "check" and e.layer in "ab")
    assert ends == pytest.approx([0.0130, 0.0155])
    assert r.total == pytest.approx(0.0395)


def test_the_main_thread_joins_a_finished_pool_of_checkers():
    # 2 layers, 2 checkers, no connect cost: the HEADs end at 11 and 11.5 ms; joining the
    # 2 threads (3 ms each) takes the main thread to 17.5 ms; then the config's HEAD
    # (0.5 + 10 + 0.5) ends at 28.5 and the manifest's at 39.5 ms.
    fast = PushProfile("t", concurrency=0, check_existing="always", compress_threads=1)
    machine = ZERO.with_options(registry_request_overhead=0.001, client_thread_join_cost=0.003)
    r = simulate([stored(MB, "a"), stored(MB, "b")], fast, rtt="10 ms", machine=machine,
                 existing="all", known="all", registry=RegistrySettings.local())
    ends = sorted(e.end for e in r.events if e.phase == "check" and e.layer in ("a", "b"))
    assert ends == pytest.approx([0.0110, 0.0115])
    joined = [e for e in r.events if "joined" in e.detail]
    assert [(e.phase, e.start, e.end) for e in joined] == [
        ("check", pytest.approx(0.0115), pytest.approx(0.0175))]
    assert r.total == pytest.approx(0.0395)


def test_a_lead_runs_before_the_delay_and_queues_in_arrival_order():
    # two steps, each: 1 s on a FIFO lock, a 2 s delay, 1 s on the lock again. The leads
    # run 0-1 and 1-2; the delays end at 3 and 4; the second parts run 3-4 and 4-5.
    def proc():
        yield Step("x", "a", lead=(Component(("lock",), 1.0),), delay=2.0,
                   components=(Component(("lock",), 1.0),))

    def main():
        yield Parallel((proc(), proc()))

    records = run(main(), {"lock": 1.0}, fifo=("lock",))
    assert sorted((r.start, r.end) for r in records) == [(0.0, 4.0), (0.0, 5.0)]


def test_under_load_scales_the_calibrated_capacity():
    # a push that kept 1.6 cores busy when the probe's threads got 1.9: with the probe now
    # finding 0.95 (half the machine), the push gets 0.8
    machine = ZERO.with_options(probe_rate=200 * MB, probe_parallelism=1.9, cpu_capacity=1.6)
    loaded = machine.under_load(200 * MB, 0.95)
    assert loaded.cpu == pytest.approx(0.8)
    assert loaded.probe_parallelism == 0.95
    assert machine.under_load(200 * MB, 1.9).cpu == pytest.approx(1.6)


def test_docker_profile_requests_follow_dockerd():
    """dockerd 20.10's requests (tests/test_docker_interop.py sees them on the real engine):
    per new blob POST, PATCH, PUT and a HEAD once committed; the config HEADed first; a
    re-push HEADs every layer it knows, and the config."""
    fresh = simulate([10_000_000] * 24, "docker")
    assert fresh.requests == 24 * 4 + (1 + 3 + 1) + 1
    again = simulate([10_000_000] * 24, "docker", existing="all")
    assert again.requests == 24 + 1 + 1


def test_start_order_largest_first_or_top_layer_first():
    layers = [(0, 30), (1, 10), (2, 50), (3, 10)]
    assert PLAIN.start_order(layers) == [2, 0, 1, 3]
    assert PLAIN.with_options(order="top").start_order(layers) == [3, 2, 1, 0]
    with pytest.raises(ValueError, match="order must be"):
        PLAIN.with_options(order="smallest")


def test_dockerd_starts_the_top_layer_first_and_the_base_last():
    # two workers, layers of 1, 1 and 2 s on a 100 MB/s link (each on its own
    # connection): largest first ends at 2 s; top first sends c and b (1 s), then the
    # base a alone (2 s more)
    layers = [stored(200 * MB, "a"), stored(100 * MB, "b"), stored(100 * MB, "c")]
    machine = ZERO.with_options(cores=8)
    largest = simulate(layers, PLAIN.with_options(concurrency=2), machine=machine,
                       network=Network(per_connection=100 * MB))
    top = simulate(layers, PLAIN.with_options(concurrency=2, order="top"), machine=machine,
                   network=Network(per_connection=100 * MB))
    assert by_layer(largest, "upload")["a"] == pytest.approx((0.0, 2.0))
    assert by_layer(top, "upload")["a"] == pytest.approx((1.0, 3.0))
    assert [e.layer for e in sorted(top.events, key=lambda e: e.start)][:2] == ["c", "b"]
    from layerlab.pusher import get_profile

    assert get_profile("docker").order == "top"
    assert get_profile("fast").order == "largest"


def test_a_same_machine_registry_takes_a_core_but_answers_requests_together():
    # 100 MB stored, registry ingest 50 MB/s on one of the client's 1 core, the client
    # hashing at 100 MB/s: 1 s + 2 s of one core shared -> the body takes 3 s
    one_core = ZERO.with_options(cores=1, sha256_rate=100 * MB)
    own = RegistrySettings(ingest_rate=50 * MB)
    shared = own.with_options(same_machine=True)
    layers = [stored(100 * MB, "a")]
    assert by_layer(simulate(layers, PLAIN, machine=one_core, registry=own),
                    "upload")["a"] == pytest.approx((0.0, 2.0))
    assert by_layer(simulate(layers, PLAIN, machine=one_core, registry=shared),
                    "upload")["a"] == pytest.approx((0.0, 3.0))
    # 16 HEADs at once of 1 ms each: answered together at 11 ms (colocated: one by one)
    fast = PushProfile("t", concurrency=0, check_existing="always", compress_threads=1)
    heads = [stored(MB, f"l{i}") for i in range(16)]
    r = simulate(heads, fast, rtt="10 ms", machine=ZERO, existing="all", known="all",
                 registry=RegistrySettings(same_machine=True, request_overhead=0.001))
    ends = [e.end for e in r.events if e.phase == "check" and e.layer.startswith("l")]
    assert ends == pytest.approx([0.011] * 16)
    assert r.total == pytest.approx(0.033)


def test_blob_and_mount_overheads_are_waits_of_their_requests():
    # serial, 3 stored layers and the config: one commit each waits 5 ms more
    layers = [stored(MB, n) for n in "abc"]
    base = simulate(layers, PLAIN, machine=ZERO, rtt="1 ms")
    slow = simulate(layers, PLAIN, machine=ZERO, rtt="1 ms",
                    registry=RegistrySettings.of(blob_overhead="5 ms"))
    assert slow.total - base.total == pytest.approx(4 * 0.005)
    commit = by_layer(slow, "commit")["a"]
    assert commit[1] - commit[0] == pytest.approx(0.001 + 0.005)
    # every layer mounted from "base": each mount waits 7 ms more
    docker = PushProfile("d", concurrency=1, check_existing="cached", registry_lookup=False,
                         compress_threads=1, small_blob_limit=0)
    kwargs = {"machine": ZERO, "rtt": "1 ms", "existing": {"base": "all"}, "repository": "app"}
    mounted = simulate(layers, docker, **kwargs)
    waited = simulate(layers, docker, registry=RegistrySettings(mount_overhead=0.007), **kwargs)
    assert mounted.count("mounted") == 3
    assert waited.total - mounted.total == pytest.approx(3 * 0.007)


def test_a_client_tarring_from_files_pays_per_file_on_the_layer_stream():
    # 100 MB compressed at 50 MB/s (2 s of one core) + 10,000 files at 50 us: 2.5 s
    layer = LayerSpec(100 * MB, 2.0, name="a", files=10_000)
    plain = simulate([layer], PLAIN, machine=ZERO)
    per_file = simulate([layer], PLAIN, machine=ZERO.with_options(client_file_cost=50e-6))
    assert by_layer(plain, "upload")["a"] == pytest.approx((0.0, 2.0))
    assert by_layer(per_file, "upload")["a"] == pytest.approx((0.0, 2.5))
    assert layer.to_json()["files"] == 10_000


def test_layers_from_image_counts_tar_entries_for_a_per_file_client(tmp_path):
    import io
    import tarfile

    from layerlab import open_image
    from layerlab.simulator import layers_from_image

    archive = SAMPLES / "docker-archive" / "app14.tar"
    expected = []
    with tarfile.open(archive) as outer:
        manifest = __import__("json").load(outer.extractfile("manifest.json"))[0]
        for name in manifest["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(name).read())) as tar:
                expected.append(sum(1 for m in tar if m.name.strip("./")))
    image = open_image(f"docker-archive:{archive}")
    assert [s.files for s in layers_from_image(image)] == [0] * len(expected)
    counted = layers_from_image(image, machine=ZERO.with_options(client_file_cost=1e-5))
    assert [s.files for s in counted] == expected
    assert sum(expected) > 14


def test_a_registry_answering_one_request_at_a_time_serialises_a_head_burst():
    # as test_a_colocated_registry_sends_and_answers_a_head_burst_one_by_one, for a
    # registry of its own that handles bodiless requests in a row (dockerd + Distribution)
    fast = PushProfile("t", concurrency=0, check_existing="always", compress_threads=1)
    layers = [stored(MB, f"l{i}") for i in range(16)]
    registry = RegistrySettings(same_machine=True, serial_requests=True, request_overhead=0.001)
    r = simulate(layers, fast, rtt="10 ms", machine=ZERO, existing="all", known="all",
                 registry=registry)
    ends = sorted(e.end for e in r.events if e.phase == "check" and e.layer.startswith("l"))
    assert ends == pytest.approx([0.011 + 0.0005 * k for k in range(16)])
    assert r.total == pytest.approx(0.0405)


def test_a_serial_registry_queues_only_its_own_share_of_each_request():
    # the client's 2 ms per HEAD overlaps between the 16 concurrent checks; the registry's
    # 1 ms is in a row, half (0.5 ms) before the 10 ms round trip and the client's 2 ms,
    # half after: HEAD k ends at 0.5 (k + 1) + 12 + 0.5 ms
    fast = PushProfile("t", concurrency=0, check_existing="always", compress_threads=1)
    layers = [stored(MB, f"l{i}") for i in range(16)]
    registry = RegistrySettings(same_machine=True, serial_requests=True, request_overhead=0.001)
    r = simulate(layers, fast, rtt="10 ms", machine=ZERO.with_options(client_request_overhead=0.002),
                 existing="all", known="all", registry=registry)
    ends = sorted(e.end for e in r.events if e.phase == "check" and e.layer.startswith("l"))
    assert ends == pytest.approx([0.013 + 0.0005 * k for k in range(16)])


def test_the_client_starts_one_layer_at_a_time():
    # 4 re-pushed layers checked by 4 workers at once: each waits its turn for the
    # client's 5 ms start, then its 10 ms HEAD
    profile = PushProfile("t", concurrency=4, check_existing="always", compress_threads=1)
    layers = [stored(MB, f"l{i}") for i in range(4)]
    r = simulate(layers, profile, rtt="10 ms", existing="all", known="all",
                 machine=ZERO.with_options(client_layer_overhead=0.005))
    ends = sorted(e.end for e in r.events if e.phase == "check" and e.layer.startswith("l")
                  and e.requests == 1)
    assert ends == pytest.approx([0.015, 0.020, 0.025, 0.030])
    # with a registry answering HEADs in a row (1 ms each, half before the round trip),
    # the starts take their turns in that row, first come first served: the four starts
    # (all queued at 0) end at 20 ms, then the four leads (0.5 ms each), then each HEAD's
    # round trip and its tail: the two rows add up
    serial = RegistrySettings(same_machine=True, serial_requests=True, request_overhead=0.001)
    r = simulate(layers, profile, rtt="10 ms", existing="all", known="all", registry=serial,
                 machine=ZERO.with_options(client_layer_overhead=0.005))
    ends = sorted(e.end for e in r.events if e.phase == "check" and e.layer.startswith("l")
                  and e.requests == 1)
    assert ends == pytest.approx([0.031, 0.0315, 0.032, 0.0325])

"""layerlab.analysis.gates: rule values, the waste floor, and every measurement, exactly."""

from __future__ import annotations

import math

import pytest

import layerlab
from analysis_images import write_archive
from layerlab.analysis.gates import (CheckResult, Gate, GateConfigError, Rule, check, go_float,
                                     parse_dive_bytes)
from layerlab.errors import LayerlabError
from layerlab.sources import open_image

# dive's three figures of the sample image "wasted" (tests/test_analysis_efficiency.py
# checks them against the real dive binary)
WASTED_EFFICIENCY = 0.741032319166568
WASTED_BYTES = 104000
WASTED_USER_PERCENT = 0.5805774512649889


@pytest.fixture(scope="module")
def wasted(samples):
    return open_image(str(samples / "docker-archive" / "wasted.tar"))


def statuses(result: CheckResult) -> dict[str, str]:
    return {r.key: r.status for r in result.results}


@pytest.mark.parametrize("text, expected", [
    ("20MB", 20_000_000), ("20mb", 20_000_000), ("20 MB", 20_000_000), ("20M", 20_000_000),
    ("20MiB", 20 * 1024**2), ("20Mi", 20 * 1024**2), ("20kib", 20 * 1024), ("1.5GB", 1_500_000_000),
    ("1,000", 1000), ("42", 42), ("42B", 42), ("0.5k", 500), ("1.9", 1), ("2EB", 2 * 1000**6),
    (42, 42), (1.9, 1),
])
def test_byte_values_as_go_humanize_parses_them(text, expected):
    assert parse_dive_bytes(text) == expected


@pytest.mark.parametrize("text", ["12XB", "", "MB", "-5", "1.2.3MB", "twenty", True, -1])
def test_bad_byte_values(text):
    with pytest.raises(ValueError):
        parse_dive_bytes(text)


def test_rule_values_and_disabled():
    assert Rule.parse("lowestEfficiency", "0.95") == Rule("lowestEfficiency", 0.95)
    assert Rule.parse("lowestEfficiency", 1) == Rule("lowestEfficiency", 1.0)
    assert Rule.parse("highestWastedBytes", "disabled").threshold is None
    assert Rule.parse("maxLayers", " Disabled ").enabled is False
    assert Rule.parse("maxLayers", "20").threshold == 20
    assert Rule.parse("maxSimulatedPushSeconds", "2 min").threshold == 120.0
    assert Rule.parse("maxSimulatedPushSeconds", 30).threshold == 30.0
    assert Rule.parse("maxPushedBytes", "100MB", "ci.yml") == Rule("maxPushedBytes", 100_000_000,
                                                                    "ci.yml")


@pytest.mark.parametrize("key, value, message", [
    ("lowestEfficiency", 1.5, "lowestEfficiency: outside the allowed range 0-1: 1.5"),
    ("highestUserWastedPercent", "-0.1", "highestUserWastedPercent: outside the allowed range 0-1: '-0.1'"),
    ("lowestEfficiency", "nan", "lowestEfficiency: outside the allowed range 0-1: 'nan'"),
    ("lowestEfficiency", True, "lowestEfficiency: not a number between 0 and 1: True"),
    ("lowestEfficiency", "high", "lowestEfficiency: not a number between 0 and 1: 'high'"),
    ("maxLayers", "2.5", "maxLayers: not a whole number: '2.5'"),
    ("maxLayers", -1, "maxLayers: not a whole number >= 0: -1"),
    ("maxSimulatedPushSeconds", "soon", "maxSimulatedPushSeconds: not a duration: 'soon'"),
    ("highestWastedBytes", "20XB", "highestWastedBytes: not a byte count: '20XB' (unknown unit 'xb')"),
])
def test_bad_rule_values_are_one_readable_line(key, value, message):
    with pytest.raises(GateConfigError) as info:
        Rule.parse(key, value)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, LayerlabError) and isinstance(info.value, ValueError)


def test_unknown_rule_names_the_known_ones():
    with pytest.raises(GateConfigError, match=r"^ci\.yml: unknown rule 'lowestEficiency' \(known: "
                                              r"lowestEfficiency, highestWastedBytes,"):
        Rule.parse("lowestEficiency", 0.9, "ci.yml")


def test_dive_defaults_apply_per_key():
    gate = Gate.default()
    assert {r.key: r.threshold for r in gate.rules} == {
        "lowestEfficiency": 0.9, "highestWastedBytes": None, "highestUserWastedPercent": 0.1,
        "maxLayers": None, "maxSize": None, "maxUncompressedSize": None, "maxPushedBytes": None,
        "maxPulledBytes": None, "maxSimulatedPushSeconds": None}
    assert gate.min_wasted_bytes_for_percent == 1_000_000
    assert dict(gate.simulation) == {"profile": "fast", "bandwidth": "100 Mbit/s", "rtt": "20 ms"}
    # as dive: a file naming one rule keeps the other rules' defaults
    only = Gate.from_mapping({"rules": {"highestWastedBytes": "1MB"}}, "f.yml")
    assert only.rule("lowestEfficiency").threshold == 0.9
    assert only.rule("highestWastedBytes") == Rule("highestWastedBytes", 1_000_000, "f.yml")
    assert only.source == "f.yml"


@pytest.mark.parametrize("data, message", [
    ({"rule": {}}, "f.yml: unknown key 'rule' (known: rules, simulation)"),
    ({"rules": ["lowestEfficiency"]}, "f.yml: 'rules' must be a mapping"),
    ({"simulation": {"latency": "2 ms"}}, "f.yml: simulation: unknown key 'latency' (known: profile, bandwidth, rtt)"),
    ({"simulation": {"bandwidth": "fast"}}, "f.yml: simulation.bandwidth: not a rate: 'fast'"),
    ({"simulation": {"bandwidth": "0 MB/s"}}, "f.yml: simulation.bandwidth: not a positive rate"),
    ({"simulation": {"profile": "turbo"}}, "f.yml: simulation.profile: "),
    ({"rules": {"minWastedBytesForPercent": "lots"}}, "f.yml: minWastedBytesForPercent: not a byte count"),
    ("rules", "f.yml: expected a mapping with 'rules:', not str"),
])
def test_bad_configs(data, message):
    with pytest.raises(GateConfigError) as info:
        Gate.from_mapping(data, "f.yml")
    assert str(info.value).startswith(message)


def test_yaml_file_and_discovery(tmp_path):
    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0.5\n  highestWastedBytes: 20MB\n"
                                       "  highestUserWastedPercent: disabled\n")
    found = Gate.find(tmp_path)
    assert found.source == str(tmp_path / ".dive-ci")
    assert [r.threshold for r in found.rules[:3]] == [0.5, 20_000_000, None]
    (tmp_path / ".layerlab-ci.yml").write_text("rules:\n  maxLayers: 3\n")
    assert Gate.find(tmp_path).rule("maxLayers").threshold == 3  # .layerlab-ci.yml first
    assert Gate.find(tmp_path / "nothing-here") == Gate.default()
    (tmp_path / "empty.yml").write_text("")
    assert Gate.load(tmp_path / "empty.yml").rules == Gate.default().rules
    (tmp_path / "broken.yml").write_text("rules: [\n")
    with pytest.raises(GateConfigError, match=r"broken\.yml: not valid YAML \(line 2\): "):
        Gate.load(tmp_path / "broken.yml")


def test_exact_figures_and_verdicts_of_the_wasted_sample(wasted):
    result = check(wasted, {"lowestEfficiency": 0.8, "highestWastedBytes": "20KB",
                            "highestUserWastedPercent": 0.5, "minWastedBytesForPercent": 0})
    assert not result.passed
    assert [r.line for r in result.failures] == [
        "FAIL lowestEfficiency: 0.741032319166568 < 0.8",
        "FAIL highestWastedBytes: 104000 B (104.0 kB) > 20000 B (20.0 kB)",
        "FAIL highestUserWastedPercent: 0.5805774512649889 > 0.5"]
    m = result.measurements
    assert (m["efficiency"], m["wasted_bytes"], m["user_wasted_percent"]) == (
        WASTED_EFFICIENCY, WASTED_BYTES, WASTED_USER_PERCENT)
    assert (m["layers"], m["size"], m["uncompressed_size"], m["user_size_bytes"]) == (
        7, 317440, 317440, 179132)
    assert m["pushed_bytes"] is m["pulled_bytes"] is m["simulated_push_seconds"] is None


def test_comparisons_are_dives_at_the_boundary(wasted):
    # equal values pass, as in dive (strict comparisons)
    at = check(wasted, {"lowestEfficiency": WASTED_EFFICIENCY, "highestWastedBytes": WASTED_BYTES,
                        "highestUserWastedPercent": WASTED_USER_PERCENT,
                        "minWastedBytesForPercent": 0, "maxLayers": 7, "maxSize": 317440})
    assert at.passed and [r.status for r in at.results[:5]] == ["pass"] * 5
    beyond = check(wasted, {"lowestEfficiency": math.nextafter(WASTED_EFFICIENCY, 1),
                            "highestWastedBytes": WASTED_BYTES - 1,
                            "highestUserWastedPercent": math.nextafter(WASTED_USER_PERCENT, 0),
                            "minWastedBytesForPercent": 0, "maxLayers": 6, "maxSize": 317439})
    assert [r.status for r in beyond.results[:5]] == ["fail"] * 5


def test_the_waste_floor_spares_ratio_rules_of_small_waste(wasted):
    rules = {"lowestEfficiency": 0.8, "highestUserWastedPercent": 0.5}
    default = check(wasted, rules)  # floor 1 MB > 104 kB wasted
    assert default.passed
    eff = default.results[0]
    assert (eff.status, eff.measured, eff.line, eff.note) == (
        "pass", WASTED_EFFICIENCY,
        "PASS lowestEfficiency: 0.741032319166568 < 0.8, but wasted 104000 B <= floor 1000000 B",
        "would fail, but the waste is not above minWastedBytesForPercent")
    assert default.results[2].status == "pass" and default.results[2].note
    assert statuses(check(wasted, {**rules, "minWastedBytesForPercent": WASTED_BYTES})) == \
        statuses(default)  # at the floor: still spared
    below = check(wasted, {**rules, "minWastedBytesForPercent": WASTED_BYTES - 1})
    assert [r.status for r in below.failures] == ["fail", "fail"]
    assert statuses(check(wasted, {**rules, "minWastedBytesForPercent": "disabled"})) == \
        statuses(below)
    # the floor never spares the absolute rule
    assert check(wasted, {"highestWastedBytes": 1000}).failures[0].key == "highestWastedBytes"


def test_single_layer_image_has_no_user_bytes(tmp_path):
    archive = write_archive(tmp_path / "one.tar", [[("file", "a", b"a" * 100)]])
    result = check(open_image(str(archive)), {"highestUserWastedPercent": 0})
    r = result.results[2]
    assert (r.status, r.measured, r.note) == ("pass", 0.0, "no bytes above the first layer")


def test_layer_count_and_sizes(samples):
    app24 = open_image(f"oci:{samples}/oci/family:app24")
    sizes = [layer.size for layer in app24.layers]
    result = check(app24, {"maxLayers": 23, "maxSize": sum(sizes), "maxUncompressedSize": 575999,
                           "lowestEfficiency": "disabled", "highestUserWastedPercent": "disabled"})
    assert statuses(result) == {
        "lowestEfficiency": "skip", "highestWastedBytes": "skip",
        "highestUserWastedPercent": "skip", "maxLayers": "fail", "maxSize": "pass",
        "maxUncompressedSize": "fail", "maxPushedBytes": "skip", "maxPulledBytes": "skip",
        "maxSimulatedPushSeconds": "skip"}
    assert result.measurements["uncompressed_size"] == 576000  # the tar bytes, as in docker-archive
    assert result.measurements["efficiency"] is None  # not measured: no rule needs it
    assert result.failures[0].line == "FAIL maxLayers: 24 > 23"


def test_pulled_bytes_given_a_nodes_images(samples):
    v1 = open_image(f"oci:{samples}/oci/family:app-v1")
    v2 = open_image(f"oci:{samples}/oci/family:app-v2")
    naive = check(v2, {"maxPulledBytes": "1MB"}).measurements["pulled_bytes"]
    assert naive == 64095 + 31305 + 26718 + 11704 + 6817
    result = check(v2, {"maxPulledBytes": 18520}, node_images=[v1])
    assert result.measurements["pulled_bytes"] == 11704 + 6817  # the two layers v1 lacks
    assert result.failures[0].line == "FAIL maxPulledBytes: 18521 B (18.5 kB) > 18520 B (18.5 kB)"
    assert result.node_images == (v1.reference,)
    # the same content stored uncompressed is other blobs: a node pulls them all
    v1_tar = open_image(str(samples / "docker-archive" / "app-v1.tar"))
    assert check(v2, {"maxPulledBytes": "1MB"}, node_images=[v1_tar]).measurements[
        "pulled_bytes"] == naive


def test_pushed_bytes_to_a_repository(samples, local_registry):
    v1 = open_image(f"oci:{samples}/oci/family:app-v1")
    v2 = open_image(f"oci:{samples}/oci/family:app-v2")
    v2_tar = open_image(str(samples / "docker-archive" / "app-v2.tar"))
    repo = f"{local_registry.host}/demo/app"
    rules = {"maxPushedBytes": "1MB"}
    # nothing there yet (the repository does not exist): everything is sent
    assert check(v2, rules, push_to=repo).measurements["pushed_bytes"] == v2.size == 140639
    layerlab.push(v1, f"{repo}:v1", progress=False, cache=False)
    assert check(v2, rules, push_to=repo).measurements["pushed_bytes"] == 11704 + 6817
    # uncompressed layers whose content the repository holds gzip'ed (same diff_id) are not sent
    assert check(v2_tar, rules, push_to=repo).measurements["pushed_bytes"] == 25088 + 12288
    # naive without a destination
    assert check(v2_tar, rules).measurements["pushed_bytes"] == v2_tar.size == 263680


def test_pushed_bytes_sees_untagged_blobs(samples, local_registry):
    from layerlab.sources.remote import RegistryClient

    v2 = open_image(f"oci:{samples}/oci/family:app-v2")
    client = RegistryClient(local_registry.host)
    top = v2.layers[-1]
    with top.open() as f:
        client.upload_blob("demo/blobs", str(top.digest), f.read())
    assert check(v2, {"maxPushedBytes": "1MB"}, push_to=f"{local_registry.host}/demo/blobs"
                 ).measurements["pushed_bytes"] == v2.size - top.size


def test_simulated_push_seconds_is_the_simulators(samples):
    from layerlab.simulator import simulate

    image = open_image(f"oci:{samples}/oci/family:app24")
    expected = simulate(image, "fast", bandwidth="100 Mbit/s", rtt="20 ms", machine=None).total
    result = check(image, {"maxSimulatedPushSeconds": 1000})
    assert result.measurements["simulated_push_seconds"] == expected
    slow = Gate.default().with_values({"maxSimulatedPushSeconds": expected},
                                      {"bandwidth": "1 Mbit/s", "rtt": "100 ms",
                                       "profile": "docker"})
    measured = check(image, slow).measurements["simulated_push_seconds"]
    assert measured == simulate(image, "docker", bandwidth="1 Mbit/s", rtt="100 ms",
                                machine=None).total
    assert measured > expected and check(image, slow).failures[0].key == "maxSimulatedPushSeconds"


def test_result_faces(wasted):
    result = check(wasted, {"highestWastedBytes": 1000})
    data = result.to_json()
    assert list(data) == ["reference", "name", "passed", "rules", "totals", "measurements",
                          "settings"]
    assert data["totals"] == {"total": 9, "passed": 2, "failed": 1, "skipped": 6}
    assert data["rules"][1] == {
        "key": "highestWastedBytes", "status": "fail", "unit": "bytes", "measured": 104000,
        "threshold": 1000, "message": "104000 B (104.0 kB) > 1000 B (1.0 kB)", "note": None,
        "line": "FAIL highestWastedBytes: 104000 B (104.0 kB) > 1000 B (1.0 kB)"}
    assert data["settings"]["minWastedBytesForPercent"] == 1_000_000
    assert result.summary() == "Result:FAIL [Total:9] [Passed:2] [Failed:1] [Skipped:6]"
    frame = result.to_frame()
    assert list(frame.columns) == ["key", "status", "unit", "measured", "threshold", "message", "note"]
    assert frame["status"].tolist().count("fail") == 1
    assert "FAIL" in result._repr_html_() and "highestWastedBytes" in result._repr_html_()
    assert layerlab.check is check


def test_check_refuses_other_rule_types(wasted):
    with pytest.raises(TypeError):
        check(wasted, ["lowestEfficiency"])
    with pytest.raises(GateConfigError, match="unknown rule 'maxLayer'"):
        check(wasted, {"maxLayer": 3})


def test_go_float():
    assert [go_float(x) for x in (1.0, 0.9, WASTED_EFFICIENCY, 1e-05, math.inf)] == [
        "1", "0.9", "0.741032319166568", "1e-05", "+Inf"]

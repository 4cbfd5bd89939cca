"""``layerlab check``: exact output lines and exit codes, config files, flags, errors,
and the same verdicts as the real ``dive --ci`` (0.13.1) on the same config."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from layerlab.cli import main
from test_analysis_efficiency import dive_binary

DIVE_KEYS = ("lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent")


def run_check(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty directory, so no .dive-ci of the checkout is picked up."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_failing_config_exact_output(samples, in_tmp, capsys):
    (in_tmp / "ci.yml").write_text(
        "rules:\n  lowestEfficiency: 0.8\n  highestWastedBytes: 20KB\n"
        "  highestUserWastedPercent: 0.5\n  minWastedBytesForPercent: 0\n  maxLayers: 7\n")
    code, out, err = run_check(capsys, str(samples / "docker-archive" / "wasted.tar"),
                               "--config", "ci.yml")
    assert (code, err) == (1, "")
    assert out == [
        "check wasted:latest (rules: ci.yml)",
        "FAIL lowestEfficiency: 0.741032319166568 < 0.8",
        "FAIL highestWastedBytes: 104000 B (104.0 kB) > 20000 B (20.0 kB)",
        "FAIL highestUserWastedPercent: 0.5805774512649889 > 0.5",
        "PASS maxLayers: 7 <= 7",
        "SKIP maxSize: disabled",
        "SKIP maxUncompressedSize: disabled",
        "SKIP maxPushedBytes: disabled",
        "SKIP maxPulledBytes: disabled",
        "SKIP maxSimulatedPushSeconds: disabled",
        "Result:FAIL [Total:9] [Passed:1] [Failed:3] [Skipped:5]",
    ]


def test_passing_defaults_exit_zero(samples, in_tmp, capsys):
    code, out, err = run_check(capsys, f"oci:{samples}/oci/family:app-v1")
    assert (code, err) == (0, "")
    assert out[0] == "check app-v1 (rules: defaults)"
    assert out[1:4] == ["PASS lowestEfficiency: 1 >= 0.9", "SKIP highestWastedBytes: disabled",
                        "PASS highestUserWastedPercent: 0 <= 0.1"]
    assert out[-1] == "Result:PASS [Total:9] [Passed:2] [Failed:0] [Skipped:7]"


def test_default_floor_spares_small_waste(samples, in_tmp, capsys):
    code, out, _ = run_check(capsys, str(samples / "docker-archive" / "wasted.tar"))
    assert code == 0
    assert out[1] == ("PASS lowestEfficiency: 0.741032319166568 < 0.9, "
                      "but wasted 104000 B <= floor 1000000 B")
    assert out[3] == ("PASS highestUserWastedPercent: 0.5805774512649889 > 0.1, "
                      "but wasted 104000 B <= floor 1000000 B")


def test_config_discovery_and_flags_override(samples, in_tmp, capsys):
    image = str(samples / "docker-archive" / "app24.tar")
    (in_tmp / ".dive-ci").write_text("rules:\n  maxLayers: 30\n")
    code, out, _ = run_check(capsys, image)
    assert code == 0 and out[0] == "check app24:latest (rules: .dive-ci)"
    assert "PASS maxLayers: 24 <= 30" in out
    (in_tmp / ".layerlab-ci.yml").write_text("rules:\n  maxLayers: 20\n")
    code, out, _ = run_check(capsys, image)
    assert code == 1 and out[0] == "check app24:latest (rules: .layerlab-ci.yml)"
    assert [line for line in out if line.startswith("FAIL")] == ["FAIL maxLayers: 24 > 20"]
    code, out, _ = run_check(capsys, image, "--max-layers", "24")
    assert code == 0 and "PASS maxLayers: 24 <= 24" in out
    assert out[0] == "check app24:latest (rules: .layerlab-ci.yml + flags)"
    code, out, _ = run_check(capsys, image, "--max-layers", "disabled", "--max-size", "575999")
    assert code == 1 and [line for line in out if line.startswith("FAIL")] == [
        "FAIL maxSize: 576000 B (576.0 kB) > 575999 B (576.0 kB)"]
    code, out, _ = run_check(capsys, image, "--no-config")
    assert code == 0 and out[0] == "check app24:latest (rules: defaults)"


def test_json_shape_and_exit(samples, in_tmp, capsys):
    code, out, _ = run_check(capsys, str(samples / "docker-archive" / "wasted.tar"), "--json",
                             "--highest-wasted-bytes", "100kB", "--max-simulated-push-seconds",
                             "0.001", "--bandwidth", "10 MB/s", "--rtt", "5 ms")
    assert code == 1
    data = json.loads("\n".join(out))
    assert list(data) == ["reference", "name", "passed", "rules", "totals", "measurements",
                          "settings"]
    assert data["passed"] is False
    assert [r["key"] for r in data["rules"] if r["status"] == "fail"] == [
        "highestWastedBytes", "maxSimulatedPushSeconds"]
    assert data["rules"][1]["line"] == "FAIL highestWastedBytes: 104000 B (104.0 kB) > 100000 B (100.0 kB)"
    assert data["measurements"]["wasted_bytes"] == 104000
    assert data["measurements"]["simulated_push_seconds"] > 0.001
    assert data["settings"]["simulation"] == {"profile": "fast", "bandwidth": "10 MB/s",
                                              "rtt": "5 ms"}
    assert data["settings"]["rules"]["highestWastedBytes"] == 100000
    assert data["totals"] == {"total": 9, "passed": 2, "failed": 2, "skipped": 5}


def test_push_to_and_node_image_flags(samples, in_tmp, capsys, local_registry):
    import layerlab

    v1 = f"oci:{samples}/oci/family:app-v1"
    v2 = f"oci:{samples}/oci/family:app-v2"
    layerlab.push(layerlab.open_image(v1), f"{local_registry.host}/demo/app:v1", progress=False,
                  cache=False)
    code, out, _ = run_check(capsys, v2, "--push-to", f"{local_registry.host}/demo/app",
                             "--max-pushed-bytes", "18520", "--node-image", v1,
                             "--max-pulled-bytes", "18521")
    assert code == 1
    assert "FAIL maxPushedBytes: 18521 B (18.5 kB) > 18520 B (18.5 kB)" in out
    assert "PASS maxPulledBytes: 18521 B (18.5 kB) <= 18521 B (18.5 kB)" in out


@pytest.mark.parametrize("config, message", [
    ("rules:\n  lowestEficiency: 0.9\n",
     "layerlab: error: bad.yml: unknown rule 'lowestEficiency' (known: lowestEfficiency, "
     "highestWastedBytes, highestUserWastedPercent, maxLayers, maxSize, maxUncompressedSize, "
     "maxPushedBytes, maxPulledBytes, maxSimulatedPushSeconds, minWastedBytesForPercent)"),
    ("rules:\n  lowestEfficiency: 1.5\n",
     "layerlab: error: bad.yml: lowestEfficiency: outside the allowed range 0-1: 1.5"),
    ("rules:\n  highestWastedBytes: 20XB\n",
     "layerlab: error: bad.yml: highestWastedBytes: not a byte count: '20XB' (unknown unit 'xb')"),
    ("rules: [\n", "layerlab: error: bad.yml: not valid YAML (line 2): expected the node "
                   "content, but found '<stream end>'"),
    ("ruels:\n  maxLayers: 3\n",
     "layerlab: error: bad.yml: unknown key 'ruels' (known: rules, simulation)"),
])
def test_bad_config_is_one_line_and_exit_2(samples, in_tmp, capsys, config, message):
    (in_tmp / "bad.yml").write_text(config)
    code, out, err = run_check(capsys, str(samples / "docker-archive" / "wasted.tar"),
                               "--config", "bad.yml")
    assert (code, out, err) == (2, [], message + "\n")


@pytest.mark.parametrize("args, message", [
    (["--config", "missing.yml"], "layerlab: error: missing.yml: no such config file"),
    (["--max-size", "12XB"], "layerlab: error: --max-size: not a byte count: '12XB' (unknown unit 'xb')"),
    (["--lowest-efficiency", "95%"], "layerlab: error: --lowest-efficiency: not a number between 0 and 1: '95%'"),
    (["--bandwidth", "fast"], "layerlab: error: --bandwidth: not a rate: 'fast' (try '100 MB/s' or '1 Gbit/s')"),
])
def test_bad_flags_exit_2(samples, in_tmp, capsys, args, message):
    code, out, err = run_check(capsys, str(samples / "docker-archive" / "wasted.tar"), *args)
    assert (code, out, err) == (2, [], message + "\n")


def test_bad_config_in_current_directory_is_an_error(samples, in_tmp, capsys):
    (in_tmp / ".dive-ci").write_text("rules:\n  maxLayers: many\n")
    code, _, err = run_check(capsys, str(samples / "docker-archive" / "wasted.tar"))
    assert (code, err) == (2, "layerlab: error: .dive-ci: maxLayers: not a whole number: 'many'\n")


# --- the same verdicts as dive --ci ------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DIVE_RESULT = re.compile(r"^\s+(PASS|FAIL|SKIP): (\w+)(?:: (.*))?$")


def run_dive_ci(archive, cwd, config=None) -> tuple[int, dict[str, tuple[str, str | None]]]:
    """dive's CI mode: exit status and {rule: (status, message)}."""
    args = [dive_binary(), "--ci", "--source", "docker-archive", str(archive)]
    if config is not None:
        args[2:2] = ["--ci-config", str(config)]
    proc = subprocess.run(args, cwd=cwd, env={**os.environ, "CI": "true"}, capture_output=True,
                          text=True, timeout=120)
    verdicts = {}
    for line in _ANSI.sub("", proc.stdout).splitlines():
        m = _DIVE_RESULT.match(line)
        if m:
            verdicts[m.group(2)] = (m.group(1), m.group(3))
    assert set(verdicts) == set(DIVE_KEYS), proc.stdout + proc.stderr
    return proc.returncode, verdicts


def layerlab_verdicts(capsys, archive, *args) -> tuple[int, dict[str, str], list[str]]:
    code, out, err = run_check(capsys, str(archive), *args)
    assert err == ""
    verdicts = {}
    for line in out[1:-1]:
        status, _, rest = line.partition(" ")
        verdicts[rest.split(":")[0]] = status
    return code, {k: verdicts[k] for k in DIVE_KEYS}, out


# dive's three rules only; minWastedBytesForPercent 0 gives dive's exact verdicts (dive
# ignores keys it does not know)
DIVE_CONFIGS = {
    "passing": "rules:\n  lowestEfficiency: 0.7\n  highestWastedBytes: 200KB\n"
               "  highestUserWastedPercent: 0.6\n  minWastedBytesForPercent: 0\n",
    "failing": "rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 50kb\n"
               "  highestUserWastedPercent: 0.2\n  minWastedBytesForPercent: 0\n",
    "mixed": "rules:\n  lowestEfficiency: disabled\n  highestWastedBytes: '103,999'\n"
             "  highestUserWastedPercent: 0.45\n  minWastedBytesForPercent: 0\n",
    "binary-units": "rules:\n  lowestEfficiency: '0.74'\n  highestWastedBytes: 101.5625KiB\n"
                    "  minWastedBytesForPercent: 0\n",
    "at-the-figures": "rules:\n  lowestEfficiency: 0.741032319166568\n  highestWastedBytes: 104000\n"
                      "  highestUserWastedPercent: 0.5805774512649889\n"
                      "  minWastedBytesForPercent: 0\n",
}


# (lowestEfficiency, highestWastedBytes, highestUserWastedPercent), exit status; the
# figures: wasted 0.741032319166568, 104000 B, 0.5805774512649889;
#          app24  0.7234410564829261, 102336 B, 0.3724058122905272
EXPECTED = {
    ("wasted", "passing"): ("PASS", "PASS", "PASS", 0),
    ("app24", "passing"): ("PASS", "PASS", "PASS", 0),
    ("wasted", "failing"): ("FAIL", "FAIL", "FAIL", 1),
    ("app24", "failing"): ("FAIL", "FAIL", "FAIL", 1),
    ("wasted", "mixed"): ("SKIP", "FAIL", "FAIL", 1),
    ("app24", "mixed"): ("SKIP", "PASS", "PASS", 0),
    ("wasted", "binary-units"): ("PASS", "PASS", "FAIL", 1),   # user percent: dive's default 0.1
    ("app24", "binary-units"): ("FAIL", "PASS", "FAIL", 1),
    ("wasted", "at-the-figures"): ("PASS", "PASS", "PASS", 0),
    ("app24", "at-the-figures"): ("FAIL", "PASS", "PASS", 1),
}


@pytest.mark.parametrize("name", ["wasted", "app24"])
@pytest.mark.parametrize("config", sorted(DIVE_CONFIGS))
def test_same_verdicts_as_dive(samples, in_tmp, capsys, name, config):
    archive = samples / "docker-archive" / f"{name}.tar"
    path = in_tmp / "ci.yml"
    path.write_text(DIVE_CONFIGS[config])
    dive_code, dive = run_dive_ci(archive, in_tmp, path)
    code, ours, out = layerlab_verdicts(capsys, archive, "--config", str(path))
    assert ours == {key: status for key, (status, _) in dive.items()}
    assert code == dive_code
    assert (*(ours[key] for key in DIVE_KEYS), code) == EXPECTED[name, config]
    # the figures dive prints in its failure messages are the ones layerlab prints
    for key, (status, message) in dive.items():
        if status == "FAIL":
            dive_figure = re.search(r"=(\S+) [<>]", message).group(1)
            line = next(line for line in out if line.startswith(f"FAIL {key}:"))
            assert line.split(": ", 1)[1].split(" ")[0] == dive_figure


def test_same_verdicts_as_dive_with_its_defaults_and_file_discovery(samples, in_tmp, capsys):
    archive = samples / "docker-archive" / "app14.tar"
    # no file: dive's defaults (0.9, disabled, 0.1), which fail app14 in dive ...
    dive_code, dive = run_dive_ci(archive, in_tmp)
    assert (dive_code, {k: s for k, (s, _) in dive.items()}) == (
        1, {"lowestEfficiency": "FAIL", "highestWastedBytes": "SKIP",
            "highestUserWastedPercent": "FAIL"})
    # ... and layerlab too once its floor is off
    code, ours, _ = layerlab_verdicts(capsys, archive, "--min-wasted-bytes-for-percent", "0")
    assert (code, ours) == (1, {k: s for k, (s, _) in dive.items()})
    # ./.dive-ci is found by both
    (in_tmp / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0.8\n  highestWastedBytes: 64109\n"
                                     "  highestUserWastedPercent: 0.28\n"
                                     "  minWastedBytesForPercent: 0\n")
    dive_code, dive = run_dive_ci(archive, in_tmp)
    code, ours, _ = layerlab_verdicts(capsys, archive)
    assert dive_code == code == 0
    assert ours == {k: s for k, (s, _) in dive.items()} == dict.fromkeys(DIVE_KEYS, "PASS")


def test_the_floor_is_where_layerlab_departs_from_dive(samples, in_tmp, capsys):
    """By design: with the default floor (1 MB) a tiny image's 104 kB of waste does not
    fail the ratio rules that dive fails."""
    archive = samples / "docker-archive" / "wasted.tar"
    path = in_tmp / "ci.yml"
    path.write_text("rules:\n  lowestEfficiency: 0.9\n  highestUserWastedPercent: 0.1\n")
    dive_code, dive = run_dive_ci(archive, in_tmp, path)
    assert dive_code == 1 and dive["lowestEfficiency"][0] == "FAIL"
    code, ours, _ = layerlab_verdicts(capsys, archive, "--config", str(path))
    assert code == 0 and ours["lowestEfficiency"] == ours["highestUserWastedPercent"] == "PASS"

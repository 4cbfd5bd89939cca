"""``layerlab check REF``: CI gates on an image, dive's ``.dive-ci`` rules and more.

Rules come from dive's defaults (lowestEfficiency 0.9, highestUserWastedPercent 0.1,
the rest disabled), then the config file (``--config FILE``, else ``.layerlab-ci.yml``
or ``.dive-ci`` in the current directory, the first found), then the flags. The file
is YAML, dive's keys and layerlab's, every value may be ``disabled``::

    rules:
      lowestEfficiency: 0.95            # dive: fails when efficiency < 0.95
      highestWastedBytes: 20MB          # dive: fails when wasted bytes > 20,000,000
      highestUserWastedPercent: 0.10    # dive: fails when wasted / user bytes > 0.10
      minWastedBytesForPercent: 1MB     # the two ratio rules fail only above this waste
      maxLayers: 20
      maxSize: 500MB                    # layers as stored (what a pull downloads)
      maxUncompressedSize: 1.5GB
      maxPushedBytes: 100MB             # what a push sends (--push-to: what REPO lacks)
      maxPulledBytes: 200MB             # what a pull downloads (--node-image: given those)
      maxSimulatedPushSeconds: 30
    simulation:                         # what maxSimulatedPushSeconds assumes
      profile: fast
      bandwidth: 100 Mbit/s
      rtt: 20 ms

minWastedBytesForPercent defaults to 1MB (1,000,000 bytes): set it to 0 for dive's
exact verdicts. Sizes are read as dive reads them (20MB = 20,000,000; 20MiB =
20,971,520). Output: one line per rule, ``PASS|FAIL|SKIP KEY: MEASURED OP
THRESHOLD``, then ``Result:PASS|FAIL [Total:N] [Passed:N] [Failed:N] [Skipped:N]``.
Exit 0 when every rule passes, 1 when one fails, 2 on a usage or config error.

``--json`` shape::

    {"reference", "name", "passed": bool,
     "rules": [{"key", "status": "pass"|"fail"|"skip", "unit": "ratio"|"bytes"|"count"|"seconds",
                "measured", "threshold", "message", "note", "line"}],
     "totals": {"total", "passed", "failed", "skipped"},
     "measurements": {"efficiency", "wasted_bytes", "user_wasted_percent", "user_size_bytes",
                      "layers", "size", "uncompressed_size", "pushed_bytes", "pulled_bytes",
                      "simulated_push_seconds"},
     "settings": {"source", "rules": {KEY: threshold|null}, "minWastedBytesForPercent",
                  "simulation": {"profile", "bandwidth", "rtt"}, "push_to", "node_images"}}
"""

from __future__ import annotations

import argparse
import os

from ._analysis_common import add_image_options, open_from_args
from .options import registry_options

# flag -> rule key (flags override the config file)
_RULE_FLAGS = {
    "lowest_efficiency": "lowestEfficiency",
    "highest_wasted_bytes": "highestWastedBytes",
    "highest_user_wasted_percent": "highestUserWastedPercent",
    "min_wasted_bytes_for_percent": "minWastedBytesForPercent",
    "max_layers": "maxLayers",
    "max_size": "maxSize",
    "max_uncompressed_size": "maxUncompressedSize",
    "max_pushed_bytes": "maxPushedBytes",
    "max_pulled_bytes": "maxPulledBytes",
    "max_simulated_push_seconds": "maxSimulatedPushSeconds",
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check", help="CI gates: efficiency, waste, size, layers, push cost (dive's .dive-ci)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", metavar="REF", help="image reference or path")
    parser.add_argument("--config", "--ci-config", metavar="FILE",
                        help="YAML rules file (default: ./.layerlab-ci.yml, else ./.dive-ci)")
    parser.add_argument("--no-config", action="store_true",
                        help="ignore config files in the current directory")
    rules = parser.add_argument_group("rules (each VALUE may be 'disabled')")
    for dest, key in _RULE_FLAGS.items():
        what = ("the waste above which the two ratio rules may fail (default 1MB; 0: as dive)"
                if key == "minWastedBytesForPercent" else f"the {key} rule")
        rules.add_argument("--" + dest.replace("_", "-"), dest=dest, metavar="VALUE", help=what)
    sim = parser.add_argument_group("the simulated push (maxSimulatedPushSeconds)")
    sim.add_argument("--profile", help="push profile (default fast)")
    sim.add_argument("--bandwidth", help="link bandwidth (default '100 Mbit/s')")
    sim.add_argument("--rtt", help="round trip per request (default '20 ms')")
    parser.add_argument("--push-to", metavar="HOST/REPO",
                        help="maxPushedBytes counts only the layers this repository lacks")
    parser.add_argument("--node-image", action="append", default=[], metavar="REF",
                        help="maxPulledBytes counts only layers these images lack (repeatable)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="layers read at once (default up to 4)")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    add_image_options(parser)
    return parser


def load_gate(args: argparse.Namespace):
    """The gate: defaults, then the config file, then the flags."""
    from layerlab.analysis.gates import Gate

    if args.config:
        if not os.path.isfile(args.config):
            raise ValueError(f"{args.config}: no such config file")
        gate = Gate.load(args.config)
    elif args.no_config:
        gate = Gate.default()
    else:
        gate = Gate.find(".")
    for dest, key in _RULE_FLAGS.items():
        gate = _flag(gate, dest, {key: getattr(args, dest)}, {})
    for dest in ("profile", "bandwidth", "rtt"):
        gate = _flag(gate, dest, {}, {dest: getattr(args, dest)})
    return gate


def _flag(gate, dest: str, rules: dict, simulation: dict):
    """``gate`` with one flag's value, if given; errors name the flag."""
    from layerlab.analysis.gates import GateConfigError

    if next(iter({**rules, **simulation}.values())) is None:
        return gate
    try:
        return gate.with_values(rules, simulation, source="flag")
    except GateConfigError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise GateConfigError(f"--{dest.replace('_', '-')}: {reason}") from None


def run(args: argparse.Namespace) -> int:
    from layerlab.analysis.gates import check

    gate = load_gate(args)  # config errors first, before opening anything
    image = open_from_args(args.reference, args)
    nodes = [open_from_args(ref, args) for ref in args.node_image]
    result = check(image, gate, push_to=args.push_to, node_images=nodes, workers=args.jobs,
                   **registry_options(args))
    if args.json:
        from layerlab.cli.output import print_json

        print_json(result.to_json())
    else:
        flags = any(rule.source == "flag" for rule in gate.rules)
        source = (gate.source or "defaults") + (" + flags" if flags else "")
        print(f"check {result.name or result.reference} (rules: {source})")
        for rule in result.results:
            print(rule.line)
        print(result.summary())
    return 0 if result.passed else 1

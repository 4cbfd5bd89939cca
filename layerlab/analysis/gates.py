"""CI gates: thresholds on an image's waste, size, layer count and push cost.

A :class:`Gate` is data: one :class:`Rule` (a key and its threshold, ``None`` when
disabled) for every key below, plus the network the simulated push assumes.
:func:`check` measures an image once for the enabled rules and returns a
:class:`CheckResult`. ``layerlab check`` is the command-line face.

dive's ``.dive-ci`` keys, with dive 0.13.1's defaults, value syntax and comparisons:

* ``lowestEfficiency`` (0-1, default 0.9): fails when ``threshold > efficiency``;
* ``highestWastedBytes`` (bytes, default disabled): fails when ``wasted > threshold``;
* ``highestUserWastedPercent`` (0-1, default 0.1): fails when ``threshold <
  wasted / (size - first layer)``; with no bytes above the first layer it fails when
  anything is wasted (dive divides by zero: +Inf) and passes otherwise.

layerlab's keys (default disabled; each fails when the measured value is greater):

* ``maxLayers``: layer count;
* ``maxSize``: the layers' bytes as stored (compressed where they are: what a pull
  downloads; a ``docker save`` archive stores them uncompressed);
* ``maxUncompressedSize``: the layers' uncompressed tar bytes (a compressed layer whose
  size no manifest or archive records is decompressed to count them);
* ``maxPushedBytes``: the stored bytes of the layers a push would send: all of them
  (naive), or with ``push_to=HOST/REPO`` those the repository lacks (a blob it has,
  by digest, or a layer of one of its tags with the same diff_id, is not sent);
* ``maxPulledBytes``: the stored bytes of the layers a node would download: all of
  them, or with ``node_images=[...]`` those none of the node's images has (by digest);
* ``maxSimulatedPushSeconds``: :func:`layerlab.simulate`'s predicted push time, with
  the ``simulation`` settings (default profile ``fast``, ``100 Mbit/s``, ``20 ms``
  round trip, the shipped machine profile so every machine gets the same figure), a
  push to a registry that holds none of the layers.

Config and manifest blobs (a few kB) are not counted in the byte figures.

``minWastedBytesForPercent`` (bytes, default ``1MB`` = 1,000,000) is not a rule but a
floor under the two ratio rules: ``lowestEfficiency`` and ``highestUserWastedPercent``
fail only when dive's wasted bytes also exceed it, so a 5 MB image with 300 kB of waste
does not fail a 2 % rule. Set it to 0 (or ``disabled``) for dive's exact verdicts.

Values are numbers or strings; every rule accepts ``disabled``. Byte values are parsed
as dive parses them (go-humanize: ``20MB`` = 20,000,000, ``20MiB`` = 20,971,520,
``20M``, ``20Mi``, ``1,000``, a bare number is bytes); seconds as ``30``, ``"30 s"``,
``"2 min"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ..errors import LayerlabError
from ..units import format_size, parse_duration, parse_rate

if TYPE_CHECKING:
    from ..model import Image

__all__ = ["GateConfigError", "Rule", "Gate", "RuleResult", "CheckResult", "check",
           "parse_dive_bytes", "RULE_KEYS", "CONFIG_NAMES"]

#: rule keys in the order they are reported: dive's three, then layerlab's
RULE_KEYS: tuple[str, ...] = (
    "lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent",
    "maxLayers", "maxSize", "maxUncompressedSize", "maxPushedBytes", "maxPulledBytes",
    "maxSimulatedPushSeconds",
)
FLOOR_KEY = "minWastedBytesForPercent"
#: config file names looked for in the current directory, in this order
CONFIG_NAMES: tuple[str, ...] = (".layerlab-ci.yml", ".dive-ci")

_DIVE_DEFAULTS: dict[str, Any] = {
    "lowestEfficiency": 0.9, "highestWastedBytes": None, "highestUserWastedPercent": 0.1,
}
DEFAULT_FLOOR = 1_000_000
DEFAULT_SIMULATION: dict[str, str] = {"profile": "fast", "bandwidth": "100 Mbit/s",
                                      "rtt": "20 ms"}
_RATIO_RULES = ("lowestEfficiency", "highestUserWastedPercent")


class GateConfigError(LayerlabError, ValueError):
    """A gate configuration is wrong: an unknown key or a value that cannot be used."""


# --- values ---------------------------------------------------------------------------
# go-humanize's ParseBytes table, as dive 0.13.1 uses it for highestWastedBytes
_HUMANIZE = {"": 1, "b": 1}
for _n, _p in enumerate("kmgtpe", start=1):
    _HUMANIZE[_p] = _HUMANIZE[_p + "b"] = 1000 ** _n
    _HUMANIZE[_p + "i"] = _HUMANIZE[_p + "ib"] = 1024 ** _n


def parse_dive_bytes(value: str | int | float) -> int:
    """A byte count as dive reads one: leading digits (``,`` ignored, ``.`` allowed),
    then an optional unit (``kB``/``k`` 1000, ``KiB``/``Ki`` 1024, ... up to ``E``),
    case-insensitive, truncated to whole bytes. ``"20MB"`` -> 20000000."""
    if isinstance(value, bool):
        raise ValueError(f"not a byte count: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0 or math.isnan(value) or math.isinf(value):
            raise ValueError(f"not a byte count: {value!r}")
        return int(value)
    m = re.match(r"[0-9.,]*", value)
    number, unit = m.group(0).replace(",", ""), value[m.end():].strip().lower()
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(f"not a byte count: {value!r} (try '20MB' or '20MiB')") from None
    if unit not in _HUMANIZE:
        raise ValueError(f"not a byte count: {value!r} (unknown unit {unit!r})")
    return int(amount * _HUMANIZE[unit])


def _parse_ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a number between 0 and 1: {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"not a number between 0 and 1: {value!r}") from None
    if not 0 <= number <= 1:  # NaN fails too
        raise ValueError(f"outside the allowed range 0-1: {value!r}")
    return number


def _parse_count(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not a whole number: {value!r}")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise ValueError(f"not a whole number >= 0: {value!r}")
    return number


def _parse_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    seconds = parse_duration(value if not isinstance(value, str) else value.strip())
    if not seconds >= 0 or math.isinf(seconds):
        raise ValueError(f"not a duration >= 0: {value!r}")
    return seconds


def _is_disabled(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() == "disabled")


# --- rules ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Kind:
    unit: str                      # "ratio", "bytes", "count" or "seconds"
    parse: Callable[[Any], Any]
    measure: str                   # name of the measurement it reads
    fails: Callable[[Any, Any], bool]   # (measured, threshold) -> failed


def _greater(measured: Any, threshold: Any) -> bool:
    return measured > threshold


_KINDS: dict[str, _Kind] = {
    "lowestEfficiency": _Kind("ratio", _parse_ratio, "efficiency", lambda m, t: t > m),
    "highestWastedBytes": _Kind("bytes", parse_dive_bytes, "wasted_bytes", _greater),
    "highestUserWastedPercent": _Kind("ratio", _parse_ratio, "user_wasted_percent",
                                      lambda m, t: t < m),
    "maxLayers": _Kind("count", _parse_count, "layers", _greater),
    "maxSize": _Kind("bytes", parse_dive_bytes, "size", _greater),
    "maxUncompressedSize": _Kind("bytes", parse_dive_bytes, "uncompressed_size", _greater),
    "maxPushedBytes": _Kind("bytes", parse_dive_bytes, "pushed_bytes", _greater),
    "maxPulledBytes": _Kind("bytes", parse_dive_bytes, "pulled_bytes", _greater),
    "maxSimulatedPushSeconds": _Kind("seconds", _parse_seconds, "simulated_push_seconds",
                                     _greater),
}


@dataclass(frozen=True)
class Rule:
    """One rule: its ``key`` (dive's or layerlab's name), its ``threshold`` (``None``:
    disabled) and where that came from (``default``, a config file path, ``flag``)."""

    key: str
    threshold: float | int | None
    source: str = "default"

    @classmethod
    def parse(cls, key: str, value: Any, source: str = "default") -> "Rule":
        """``Rule("maxSize", 500000000)`` from ``("maxSize", "500MB")``; raises
        :class:`GateConfigError` for an unknown key or an unusable value."""
        kind = _KINDS.get(key)
        if kind is None:
            raise GateConfigError(f"{_where(source)}unknown rule {key!r} (known: "
                                  f"{', '.join(RULE_KEYS + (FLOOR_KEY,))})")
        if _is_disabled(value):
            return cls(key, None, source)
        try:
            return cls(key, kind.parse(value), source)
        except ValueError as exc:
            raise GateConfigError(f"{_where(source)}{key}: {exc}") from None

    @property
    def enabled(self) -> bool:
        return self.threshold is not None

    @property
    def unit(self) -> str:
        return _KINDS[self.key].unit


def _where(source: str) -> str:
    return "" if source in ("default", "flag", "") else f"{source}: "


@dataclass(frozen=True)
class Gate:
    """Every rule (one per key of :data:`RULE_KEYS`, in that order), the waste floor of
    the ratio rules, and the ``simulation`` settings (``profile``, ``bandwidth``,
    ``rtt``) ``maxSimulatedPushSeconds`` assumes. ``source`` is the config file, if any.
    """

    rules: tuple[Rule, ...]
    min_wasted_bytes_for_percent: int = DEFAULT_FLOOR
    simulation: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SIMULATION))
    source: str | None = None

    @classmethod
    def default(cls) -> "Gate":
        """dive's default rules (efficiency >= 0.9, user waste <= 0.1), layerlab's off."""
        return cls(tuple(Rule(key, _DIVE_DEFAULTS.get(key)) for key in RULE_KEYS))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "") -> "Gate":
        """A gate from a parsed config: ``{"rules": {KEY: VALUE}, "simulation":
        {"profile", "bandwidth", "rtt"}}``; absent keys keep their defaults."""
        where = _where(source)
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise GateConfigError(f"{where}expected a mapping with 'rules:', not {type(data).__name__}")
        unknown = [str(k) for k in data if k not in ("rules", "simulation")]
        if unknown:
            raise GateConfigError(f"{where}unknown key {unknown[0]!r} (known: rules, simulation)")
        for section in ("rules", "simulation"):
            if data.get(section) is not None and not isinstance(data[section], Mapping):
                raise GateConfigError(f"{where}{section!r} must be a mapping")
        gate = cls.default()
        if source:
            gate = replace(gate, source=source)
        return gate.with_values(data.get("rules") or {}, data.get("simulation") or {},
                                source=source or "default")

    @classmethod
    def load(cls, path: str | Path) -> "Gate":
        """Read a YAML config file (``.dive-ci`` style)."""
        import yaml

        text = Path(path).read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" (line {mark.line + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise GateConfigError(f"{path}: not valid YAML{at}: {problem}") from None
        return cls.from_mapping(data, str(path))

    @classmethod
    def find(cls, directory: str | Path = ".") -> "Gate":
        """The first of :data:`CONFIG_NAMES` in ``directory``, else :meth:`default`."""
        for name in CONFIG_NAMES:
            candidate = Path(directory) / name
            if candidate.is_file():
                return cls.load(candidate)
        return cls.default()

    def with_values(self, rules: Mapping[str, Any] | None = None,
                    simulation: Mapping[str, Any] | None = None,
                    source: str = "flag") -> "Gate":
        """This gate with rule values (``{"maxLayers": 20, "minWastedBytesForPercent":
        "disabled"}``) and simulation settings replaced."""
        where = _where(source)
        by_key = {rule.key: rule for rule in self.rules}
        floor = self.min_wasted_bytes_for_percent
        for key, value in (rules or {}).items():
            if key == FLOOR_KEY:
                try:
                    floor = 0 if _is_disabled(value) else parse_dive_bytes(value)
                except ValueError as exc:
                    raise GateConfigError(f"{where}{key}: {exc}") from None
            else:
                by_key[str(key)] = Rule.parse(str(key), value, source)
        sim = dict(self.simulation)
        for key, value in (simulation or {}).items():
            if key not in DEFAULT_SIMULATION:
                raise GateConfigError(f"{where}simulation: unknown key {key!r} (known: "
                                      f"{', '.join(DEFAULT_SIMULATION)})")
            sim[key] = _check_simulation(key, value, where)
        return replace(self, rules=tuple(by_key[key] for key in RULE_KEYS),
                       min_wasted_bytes_for_percent=floor, simulation=sim)

    def rule(self, key: str) -> Rule:
        """The rule named ``key``."""
        for rule in self.rules:
            if rule.key == key:
                return rule
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source,
                "rules": {rule.key: rule.threshold for rule in self.rules},
                FLOOR_KEY: self.min_wasted_bytes_for_percent,
                "simulation": dict(self.simulation)}


def _check_simulation(key: str, value: Any, where: str) -> str:
    text = str(value).strip()
    try:
        if key == "profile":
            from ..pusher.profiles import get_profile

            get_profile(text)
        elif key == "bandwidth":
            if parse_rate(text) <= 0:
                raise ValueError(f"not a positive rate: {text!r}")
        else:
            parse_duration(text)
    except (ValueError, LayerlabError) as exc:
        raise GateConfigError(f"{where}simulation.{key}: {exc}") from None
    return text


# --- results --------------------------------------------------------------------------
def go_float(x: float) -> str:
    """A float as Go's ``%v`` prints it (dive's messages): shortest repr, no ``.0``."""
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _show(unit: str, value: Any) -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return go_float(value)
    if unit == "bytes":
        return f"{value} B ({format_size(value)})"
    if unit == "seconds":
        return f"{value:.3f} s"
    return str(value)


@dataclass(frozen=True)
class RuleResult:
    """How one rule fared: ``status`` ``pass``, ``fail`` or ``skip`` (disabled), the
    ``measured`` value (``None`` when skipped, or infinite for a ratio dive divides by
    zero), the ``threshold`` and a one-line ``message`` (``measured vs threshold``);
    ``note`` says why a rule passed that would fail without the waste floor."""

    key: str
    status: str
    unit: str
    measured: float | int | None
    threshold: float | int | None
    message: str
    note: str | None = None

    @property
    def line(self) -> str:
        """``FAIL lowestEfficiency: 0.741032319166568 < 0.8``."""
        return f"{self.status.upper()} {self.key}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        measured = self.measured
        if isinstance(measured, float) and math.isinf(measured):
            measured = None
        return {"key": self.key, "status": self.status, "unit": self.unit,
                "measured": measured, "threshold": self.threshold, "message": self.message,
                "note": self.note, "line": self.line}


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a :class:`Gate` on one image: every rule's :class:`RuleResult`,
    the measurements taken (``None`` for those no enabled rule needed) and the gate."""

    reference: str
    name: str | None
    results: tuple[RuleResult, ...]
    measurements: Mapping[str, Any]
    gate: Gate
    push_to: str | None = None
    node_images: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when no rule failed."""
        return not self.failures

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.status == "fail")

    def totals(self) -> dict[str, int]:
        count = {s: sum(r.status == s for r in self.results) for s in ("pass", "fail", "skip")}
        return {"total": len(self.results), "passed": count["pass"], "failed": count["fail"],
                "skipped": count["skip"]}

    def summary(self) -> str:
        """``Result:FAIL [Total:9] [Passed:0] [Failed:3] [Skipped:6]`` (dive's, less Warn)."""
        t = self.totals()
        return (f"Result:{'PASS' if self.passed else 'FAIL'} [Total:{t['total']}] "
                f"[Passed:{t['passed']}] [Failed:{t['failed']}] [Skipped:{t['skipped']}]")

    def to_json(self) -> dict[str, Any]:
        """The ``layerlab check --json`` shape."""
        return {"reference": self.reference, "name": self.name, "passed": self.passed,
                "rules": [r.to_json() for r in self.results], "totals": self.totals(),
                "measurements": dict(self.measurements),
                "settings": {**self.gate.to_json(), "push_to": self.push_to,
                             "node_images": list(self.node_images)}}

    def to_frame(self):
        """One row per rule: key, status, unit, measured, threshold, message, note."""
        import pandas as pd

        columns = ["key", "status", "unit", "measured", "threshold", "message", "note"]
        return pd.DataFrame([{c: getattr(r, c) for c in columns} for r in self.results],
                            columns=columns)

    def __repr__(self) -> str:
        return f"<CheckResult {self.name or self.reference}: {self.summary()}>"

    def _repr_html_(self) -> str:
        from ._present import html_block, html_table

        rows = [(r.status.upper(), r.key, r.message, r.note or "") for r in self.results]
        return html_block(f"CI gates on {self.name or self.reference}", self.summary(),
                          html_table(["status", "rule", "measured vs threshold", "note"],
                                     rows, "llll"))


# --- measuring ------------------------------------------------------------------------
def _pushed_bytes(image: "Image", push_to: str | None, client_options: Mapping[str, Any]) -> int:
    if push_to is None:
        return image.size
    from ..sources.remote import load_repository
    from ..sources.remote.image import client_for, registry_reference

    ref = registry_reference(push_to)
    client = client_for(ref, **client_options)
    try:
        tags = load_repository(ref, progress=False, client=client)
    except LayerlabError as exc:
        if getattr(exc, "code", None) != "NAME_UNKNOWN":
            raise
        tags = []  # a repository that does not exist yet lacks everything
    digests = {str(layer.digest) for tag in tags for layer in tag.layers}
    diff_ids = {str(layer.diff_id) for tag in tags for layer in tag.layers if layer.diff_id}
    sent = 0
    seen: set[str] = set()
    for layer in image.layers:
        key = str(layer.digest)
        if key in seen:
            continue
        seen.add(key)
        if key in digests or (layer.diff_id and str(layer.diff_id) in diff_ids):
            continue
        if client.head_blob(ref.repository, key) is None:
            sent += layer.size
    return sent


def _uncompressed_size(image: "Image") -> int:
    """The layers' tar bytes: as recorded, else counted by decompressing the layer."""
    total = 0
    for layer in image.layers:
        if layer.uncompressed_size is not None:
            total += layer.uncompressed_size
            continue
        with layer.open_uncompressed(verify=False) as stream:
            while chunk := stream.read(1 << 20):
                total += len(chunk)
    return total


def _pulled_bytes(image: "Image", node_images: Sequence["Image"]) -> int:
    from .shared import shared_layers

    if not node_images:
        return image.size
    share = shared_layers([*node_images, image])
    node_labels = [i.label for i in share.images[:-1]]
    return sum(u.size for u in share.push_after(share.images[-1].label, *node_labels))


def _simulated_seconds(image: "Image", simulation: Mapping[str, str]) -> float:
    from ..simulator import simulate

    return simulate(image, simulation["profile"], bandwidth=simulation["bandwidth"],
                    rtt=simulation["rtt"], machine=None).total


def _measure(image: "Image", needed: set[str], push_to: str | None,
             node_images: Sequence["Image"], simulation: Mapping[str, str],
             client_options: Mapping[str, Any], workers: int | None) -> dict[str, Any]:
    m: dict[str, Any] = dict.fromkeys(
        ("efficiency", "wasted_bytes", "user_wasted_percent", "user_size_bytes", "layers",
         "size", "uncompressed_size", "pushed_bytes", "pulled_bytes",
         "simulated_push_seconds"))
    m["layers"], m["size"], m["uncompressed_size"] = (len(image.layers), image.size,
                                                      image.uncompressed_size)
    if needed & {"efficiency", "wasted_bytes", "user_wasted_percent"}:
        from .wasted import efficiency

        report = efficiency(image, workers=workers)
        m.update(efficiency=report.efficiency, wasted_bytes=report.wasted_bytes,
                 user_wasted_percent=report.user_wasted_percent,
                 user_size_bytes=report.user_size_bytes)
    if "uncompressed_size" in needed and m["uncompressed_size"] is None:
        m["uncompressed_size"] = _uncompressed_size(image)
    if "pushed_bytes" in needed:
        m["pushed_bytes"] = _pushed_bytes(image, push_to, client_options)
    if "pulled_bytes" in needed:
        m["pulled_bytes"] = _pulled_bytes(image, node_images)
    if "simulated_push_seconds" in needed:
        m["simulated_push_seconds"] = _simulated_seconds(image, simulation)
    return m


def _evaluate(rule: Rule, m: Mapping[str, Any], floor: int) -> RuleResult:
    kind = _KINDS[rule.key]
    if not rule.enabled:
        return RuleResult(rule.key, "skip", kind.unit, None, None, "disabled")
    measured = m[kind.measure]
    note = None
    if rule.key == "highestUserWastedPercent" and measured is None:
        # dive divides by zero user bytes: NaN (passes) without waste, +Inf (fails) with
        measured = math.inf if m["wasted_bytes"] else 0.0
        note = "no bytes above the first layer"
    failed = kind.fails(measured, rule.threshold)
    op = {"lowestEfficiency": ("<", ">=")}.get(rule.key, (">", "<="))[0 if failed else 1]
    message = f"{_show(kind.unit, measured)} {op} {_show(kind.unit, rule.threshold)}"
    if failed and rule.key in _RATIO_RULES and floor and m["wasted_bytes"] <= floor:
        failed = False
        note = f"would fail, but the waste is not above {FLOOR_KEY}"
        message += f", but wasted {m['wasted_bytes']} B <= floor {floor} B"
    return RuleResult(rule.key, "fail" if failed else "pass", kind.unit, measured,
                      rule.threshold, message, note)


def check(image: "Image", rules: "Gate | Mapping[str, Any] | None" = None, *,
          push_to: str | None = None, node_images: Iterable["Image"] = (),
          workers: int | None = None, **client_options: Any) -> CheckResult:
    """Check ``image`` against ``rules``: a :class:`Gate`, a mapping of rule values
    applied over dive's defaults (``{"lowestEfficiency": 0.95, "maxLayers": 20}``), or
    ``None`` for the defaults.

    ``push_to`` (``HOST/REPO``) makes ``maxPushedBytes`` count only what that repository
    lacks (``client_options`` such as ``plain_http=True``, ``auth=(user, password)`` reach
    its client); ``node_images`` makes ``maxPulledBytes`` count only what those images do
    not already provide. Only what an enabled rule needs is measured (the efficiency scan
    reads tar headers with ``workers`` threads; the simulation samples uncompressed layers).
    """
    if rules is None:
        gate = Gate.default()
    elif isinstance(rules, Gate):
        gate = rules
    elif isinstance(rules, Mapping):
        gate = Gate.default().with_values(rules)
    else:
        raise TypeError("check() takes a Gate, a mapping of rule values or None")
    nodes = list(node_images)
    needed = {_KINDS[r.key].measure for r in gate.rules if r.enabled}
    if needed & {"efficiency", "user_wasted_percent"} and gate.min_wasted_bytes_for_percent:
        needed.add("wasted_bytes")
    measurements = _measure(image, needed, push_to, nodes, gate.simulation, client_options,
                            workers)
    results = tuple(_evaluate(rule, measurements, gate.min_wasted_bytes_for_percent)
                    for rule in gate.rules)
    from ._present import image_label

    return CheckResult(image.reference, image.name or image_label(image), results,
                       measurements, gate, push_to,
                       tuple(i.reference for i in nodes))

"""Readable units: sizes, rates and durations in and out of strings.

Sizes are bytes (int) everywhere in the API; these helpers only convert at the edges.
Decimal units (kB, MB, GB) are powers of 1000, binary units (KiB, MiB, GiB) of 1024;
``b``/``bit`` rates (``"100 Mbit/s"``) are divided by 8.
"""

from __future__ import annotations

import re

_SIZE_UNITS = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_BIT_UNITS = {"bit": 1, "kbit": 1000, "mbit": 1000**2, "gbit": 1000**3,
              "kbps": 1000, "mbps": 1000**2, "gbps": 1000**3}
_TIME_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6,
               "ns": 1e-9, "m": 60.0, "min": 60.0, "h": 3600.0}
_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"


def parse_size(value: str | int | float) -> int:
    """``"780 MB"`` -> 780000000; ``"4 MiB"`` -> 4194304; numbers pass through as bytes."""
    if isinstance(value, (int, float)):
        return int(value)
    m = re.fullmatch(_NUMBER + r"([a-zA-Z]*)\s*", value)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (try '780 MB' or '4 MiB')")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def parse_rate(value: str | int | float) -> float:
    """A transfer rate in bytes per second: ``"100 MB/s"``, ``"1 Gbit/s"``, ``"50 Mbps"``."""
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(_NUMBER + r"([a-zA-Zµ]*)\s*(?:/\s*s)?\s*", value)
    if not m:
        raise ValueError(f"not a rate: {value!r} (try '100 MB/s' or '1 Gbit/s')")
    number, unit = float(m.group(1)), m.group(2).lower()
    if unit in _BIT_UNITS:
        return number * _BIT_UNITS[unit] / 8
    if unit in _SIZE_UNITS:
        return number * _SIZE_UNITS[unit]
    raise ValueError(f"not a rate: {value!r} (try '100 MB/s' or '1 Gbit/s')")


def parse_duration(value: str | int | float) -> float:
    """A duration in seconds: ``"20 ms"`` -> 0.02, ``"1.5 s"`` -> 1.5; numbers are seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(_NUMBER + r"([a-zA-Zµ]*)\s*", value)
    if not m or m.group(2).lower() not in _TIME_UNITS:
        raise ValueError(f"not a duration: {value!r} (try '20 ms' or '1.5 s')")
    return float(m.group(1)) * _TIME_UNITS[m.group(2).lower()]


def format_size(n: int | float | None) -> str:
    """Bytes for humans, decimal units as Docker prints them: ``"780.0 MB"``."""
    if n is None:
        return "-"
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def format_duration(seconds: float | None) -> str:
    """Seconds for humans: ``"1.23 s"``, ``"45 ms"``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 else f"{seconds * 1e6:.0f} µs"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def format_rate(bytes_per_second: float) -> str:
    """A rate for humans: ``"112.5 MB/s"``."""
    return format_size(bytes_per_second) + "/s"

"""``.dockerignore`` files, read and matched the way Docker does.

Reading (as Docker's ignore-file reader): a UTF-8 BOM on the first line is dropped;
lines starting with ``#`` are comments; each line is trimmed of surrounding white space
and skipped if empty; a leading ``!`` makes an exception (re-include); the pattern is
cleaned like Go's ``filepath.Clean`` (``./a`` -> ``a``, ``a//b/`` -> ``a/b``,
``a/../b`` -> ``b``) and a leading ``/`` is dropped.

Matching (as Docker's pattern matcher): patterns are Go ``filepath.Match`` patterns
(``*`` any run of non-``/`` characters, ``?`` one non-``/`` character, ``[...]``
classes, ``\\`` escapes) plus ``**``, which matches any number of directories (also
none); a path is excluded when it, or one of its parent directories, matches a
pattern; every pattern is tried in order and the last one that matches decides, so a
later ``!pattern`` re-includes what an earlier pattern excluded.

Written here because no Python library has these rules: :mod:`fnmatch` lets ``*`` cross
``/`` and has no ``**``; ``pathspec`` implements gitignore's, which differ (a pattern
without ``/`` matches at any depth there, only at the root here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import LayerlabError

__all__ = ["IgnorePattern", "DockerIgnore", "clean_path", "read_patterns"]

_REGEX_SPECIAL = set(".+()|{}$")


def clean_path(path: str) -> str:
    """Go's ``path.Clean``: the shortest equivalent slash path (``""`` -> ``"."``)."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = "/".join(parts)
    return ("/" + out) if rooted else (out or ".")


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, normalised as Docker reads them."""
    patterns = []
    for number, line in enumerate(text.splitlines()):
        if number == 0:
            line = line.lstrip("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = clean_path(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append(("!" if invert else "") + line)
    return patterns


def _translate(pattern: str) -> tuple[str, str | re.Pattern[str]]:
    """(kind, matcher) for a cleaned pattern: kind is exact, prefix, suffix or regex."""
    out = ["^"]
    kind = "exact"
    i, n = 0, len(pattern)
    first = True
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        out.append(".*")
                        kind = "regex"
                else:
                    out.append("(.*/)?")
                    kind = "regex"
                if first:
                    kind = "suffix"
            else:
                out.append("[^/]*")
                kind = "regex"
        elif ch == "?":
            out.append("[^/]")
            kind = "regex"
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append("\\" + pattern[i])
                i += 1
                kind = "regex"
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regex"
        else:
            out.append(ch)
        first = False
    if kind != "regex":
        return kind, pattern
    try:
        return kind, re.compile("".join(out) + "$")
    except re.error as exc:
        raise LayerlabError(f"invalid .dockerignore pattern {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class IgnorePattern:
    """One cleaned pattern; ``exclusion`` for a ``!`` exception."""

    pattern: str
    exclusion: bool
    kind: str
    matcher: object

    @classmethod
    def parse(cls, text: str) -> "IgnorePattern":
        text = clean_path(text.strip())
        exclusion = text.startswith("!")
        if exclusion:
            text = text[1:]
            if not text:
                raise LayerlabError('invalid .dockerignore pattern "!"')
        _check_go_syntax(text)
        kind, matcher = _translate(text)
        return cls(text, exclusion, kind, matcher)

    def match(self, path: str) -> bool:
        """Does this pattern match ``path`` itself (a cleaned, relative slash path)?"""
        if self.kind == "exact":
            return path == self.pattern
        if self.kind == "prefix":
            return path.startswith(self.pattern[:-2])
        if self.kind == "suffix":
            suffix = self.pattern[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        return self.matcher.match(path) is not None  # type: ignore[union-attr]


def _check_go_syntax(pattern: str) -> None:
    """Reject what Go's ``filepath.Match`` rejects: unclosed ``[``, a trailing ``\\``
    inside a class, an empty class."""
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            start = j
            while j < n and (pattern[j] != "]" or j == start):
                if pattern[j] == "\\":
                    j += 1
                j += 1
            if j >= n:
                raise LayerlabError(f"invalid .dockerignore pattern {pattern!r}: "
                                    "syntax error in pattern")
            i = j
        i += 1


class DockerIgnore:
    """A parsed ``.dockerignore``: :meth:`excluded` tells whether a context path is left
    out of the build context."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(IgnorePattern.parse(p) for p in patterns if p.strip())

    @classmethod
    def from_file(cls, path: str | Path) -> "DockerIgnore":
        return cls(read_patterns(Path(path).read_text(encoding="utf-8", errors="replace")))

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """True when ``path`` (relative to the context, ``/``-separated) is ignored."""
        path = clean_path(path)
        if path == ".":
            return False
        parent = path.rpartition("/")[0]
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit and parents:
                for i in range(1, len(parents) + 1):
                    if pattern.match("/".join(parents[:i])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched

    def __repr__(self) -> str:
        return f"<DockerIgnore {len(self.patterns)} patterns>"

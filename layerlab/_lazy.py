"""Lazily imported package exports: a package's public names load their submodule on
first use, so importing the package (or the CLI) stays cheap."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str], extra: tuple[str, ...] = ()
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public names live in the
    submodules ``exports`` maps them to (``{"RegistryClient": "client"}``); a value is
    imported once, then kept on the package. ``extra`` names more entries of ``__dir__``."""

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def dir_() -> list[str]:
        return sorted(set(exports) | set(extra))

    return getattr_, dir_

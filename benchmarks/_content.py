"""Deterministic file material for the benchmark images: three pools sliced at seeded offsets.

Generating 780 MB byte by byte in Python would be far too slow, so a few MB of each kind of
material is made once (seeded) and every file is a sequence of up-to-1-MiB slices of its pool
at offsets derived from the file's own seed.

- ``text``: source-like tokens, identifiers and indentation (zlib -6 ratio about 4.3)
- ``binary``: 4 KiB blocks of instruction-like token streams, string tables, zero padding
  and random bytes (ratio about 2.6)
- ``packed``: already-compressed data: real deflate streams and random bytes (ratio 1.0)
"""

from __future__ import annotations

import random
import zlib
from functools import lru_cache

SEGMENT = 1 << 20
BLOCK = 4096
# Share of 4 KiB blocks in the binary pool, tuned so the whole image lands near gzip -6 2.41.
BINARY_MIX = {"code": 0.30, "strings": 0.36, "zeros": 0.25, "random": 0.09}

_SYLLABLES = (
    "get set blob layer push pull tag cache read write size name path data hash sum json tar "
    "gzip item node list map conf user time open close file stream chunk reg auth token index "
    "ref desc copy load save scan walk diff sync plan"
).split()
_KEYWORDS = (
    "def return self import from class if else for in not and None True = == ( ) : , + - [ ] { } 0 1 #"
).split()
_BREAKS = ["\n", "\n    ", "\n        ", "\n            "]


def _text_pool(rng: random.Random, size: int) -> bytes:
    idents = ["_".join(rng.choices(_SYLLABLES, k=rng.randrange(1, 4))) for _ in range(1500)]
    tokens = idents + _KEYWORDS + _BREAKS
    weights = [1] * len(idents) + [8] * len(_KEYWORDS) + [40, 40, 25, 10]
    out = " ".join(rng.choices(tokens, weights, k=size // 5)).encode()
    while len(out) < size:
        out += out[: size - len(out)]
    return out[:size]


def _binary_pool(rng: random.Random, size: int, strings: bytes) -> bytes:
    tokens = [rng.randbytes(rng.randrange(2, 9)) for _ in range(4096)]
    zipf = [1 / (i + 1) for i in range(len(tokens))]
    code = b"".join(rng.choices(tokens, zipf, k=size // 20))
    noise = rng.randbytes(size)
    kinds = rng.choices(list(BINARY_MIX), list(BINARY_MIX.values()), k=size // BLOCK)
    parts, cursor = [], 0
    for i, kind in enumerate(kinds):
        if kind == "zeros":
            parts.append(bytes(BLOCK))
            continue
        source = {"code": code, "strings": strings, "random": noise}[kind]
        start = (i * BLOCK * 7919 + cursor) % (len(source) - BLOCK)
        cursor += BLOCK
        parts.append(source[start:start + BLOCK])
    return b"".join(parts)


def _packed_pool(rng: random.Random, size: int, text: bytes) -> bytes:
    deflated = b""
    for start in range(0, len(text), 1 << 20):
        deflated += zlib.compress(text[start:start + (1 << 20)], 6)
        if len(deflated) >= size // 2:
            break
    return deflated[: size // 2] + rng.randbytes(size - min(len(deflated), size // 2))


def pools(seed: int = 1, size: int = 4 << 20) -> dict[str, memoryview]:
    """The three material pools (text, binary, packed), built once per seed."""
    return _pools(seed, size)


@lru_cache(maxsize=2)
def _pools(seed: int, size: int) -> dict[str, memoryview]:
    rng = random.Random(f"layerlab-bench-pools:{seed}")
    text = _text_pool(rng, size)
    return {
        "text": memoryview(text),
        "binary": memoryview(_binary_pool(rng, 2 * size, text)),
        "packed": memoryview(_packed_pool(rng, size, text)),
    }


def chunks(pool: memoryview, size: int, seed: int):
    """The bytes of one file: up-to-1-MiB slices of ``pool`` at offsets derived from ``seed``."""
    done, j = 0, 0
    while done < size:
        length = min(SEGMENT, size - done)
        offset = ((seed + 1) * 2654435761 + j * 40503) % (len(pool) - length + 1)
        yield pool[offset:offset + length]
        done += length
        j += 1


def pool_ratios(seed: int = 1) -> dict[str, float]:
    """zlib level 6 ratio of 2 MiB of each pool (for tuning)."""
    out = {}
    for name, pool in pools(seed=seed).items():
        sample = bytes(pool[: 2 << 20])
        out[name] = len(sample) / len(zlib.compress(sample, 6))
    return out

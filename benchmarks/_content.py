"""Deterministic file material for the benchmark images: three pools sliced at seeded offsets.

Generating 780 MB byte by byte in Python would be far too slow, so a few MB of each kind of
material is made once (seeded) and every file is a sequence of up-to-1-MiB slices of its pool
at offsets derived from the file's own seed.

- ``text``: source-like identifiers, keywords and indentation in paragraphs, a share of which
  repeat a recent paragraph (boilerplate)
- ``binary``: 4 KiB blocks of instruction-like bytes (a skewed byte distribution with near
  repeats), string tables, zero padding and random bytes
- ``packed``: already-compressed data: real deflate streams and random bytes (ratio 1.0)

The knobs are tuned so that a whole image matches the reference image of ``ANCHORS.md`` on
every deflate engine at once, not only gzip -6 (generator version 3): big14 gives zlib level
1 / 6 2.25 / 2.41 and ISA-L level 1 / 3 2.27 / 2.32 (reference: 2.29 / 2.41, 2.29 / 2.32).
Real binaries are more sensitive to the level (ISA-L level 1 compresses this machine's
``/usr/bin`` 12 % worse than zlib -6, as did version 2's material); see benchmarks/README.md.
"""

from __future__ import annotations

import random
import string
import zlib
from functools import lru_cache

SEGMENT = 1 << 20
BLOCK = 4096
BINARY_MIX = {"code": 0.30, "strings": 0.36, "zeros": 0.26, "random": 0.08}
TEXT_REPEAT = 0.58  # share of text paragraphs that repeat one of the last RECENT paragraphs
RECENT = 8
SYLLABLE_WEIGHT = 20  # weight of a syllable identifier against a random-letter one
CODE_REPEAT = 0.5  # share of code runs that copy 16-127 bytes from the last 4 KiB
CODE_SKEW = 1.05  # byte i of the shuffled alphabet has weight CODE_SKEW ** -i

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
    letters = string.ascii_lowercase + "_"
    syllables = ["_".join(rng.choices(_SYLLABLES, k=rng.randrange(1, 4))) for _ in range(1500)]
    randoms = ["".join(rng.choices(letters, k=rng.randrange(3, 13))) for _ in range(20000)]
    tokens = syllables + randoms + _KEYWORDS + _BREAKS
    weights = ([SYLLABLE_WEIGHT] * len(syllables) + [1] * len(randoms) + [8] * len(_KEYWORDS)
               + [40, 40, 25, 10])
    stream = " ".join(rng.choices(tokens, weights, k=size // 5)).encode()
    parts: list[bytes] = []
    recent: list[bytes] = []
    done = cursor = 0
    while done < size:
        if recent and rng.random() < TEXT_REPEAT:
            paragraph = rng.choice(recent)
        else:
            length = rng.randrange(200, 1500)
            paragraph = stream[cursor:cursor + length]
            cursor = (cursor + length) % (len(stream) - 1500)
            recent = [*recent[1 - RECENT:], paragraph]
        parts.append(paragraph)
        done += len(paragraph)
    return b"".join(parts)[:size]


def _code_stream(rng: random.Random, size: int) -> bytes:
    alphabet = list(range(256))
    rng.shuffle(alphabet)
    # fresh runs are about a third of the stream (mean 36 bytes against 72 per repeat)
    fresh = bytes(rng.choices(alphabet, [CODE_SKEW ** -i for i in range(256)], k=size // 2))
    out = bytearray()
    cursor = 0
    while len(out) < size:
        if len(out) > BLOCK and rng.random() < CODE_REPEAT:
            length = rng.randrange(16, 128)
            start = len(out) - rng.randrange(length, BLOCK)
            out += out[start:start + length]
        else:
            length = rng.randrange(8, 64)
            out += fresh[cursor:cursor + length]
            cursor = (cursor + length) % (len(fresh) - 64)
    return bytes(out[:size])


def _binary_pool(rng: random.Random, size: int, strings: bytes) -> bytes:
    code = _code_stream(rng, size)
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

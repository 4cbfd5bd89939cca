"""Digest grammar and streaming hashers (layerlab.digest)."""

from __future__ import annotations

import gzip
import hashlib
import io

import pytest

from layerlab.digest import (CHUNK_SIZE, EMPTY_SHA256, SCHEMA1_EMPTY_LAYER, Digest, Hasher,
                             HashingReader, digest_bytes, digest_file, digest_stream, verify)
from layerlab.errors import DigestMismatchError, InvalidDigestError

HEX64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA512_EMPTY = ("sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")


def test_sha256_parses_and_exposes_parts():
    d = Digest("sha256:" + HEX64)
    assert d == "sha256:" + HEX64 and isinstance(d, str)
    assert d.algorithm == "sha256"
    assert d.hex == HEX64
    assert d.short == "e3b0c44298fc"
    assert Digest(d) is d
    assert hash(d) == hash("sha256:" + HEX64)
    assert repr(d) == f"Digest('sha256:{HEX64}')"


def test_sha512_is_supported():
    d = Digest(SHA512_EMPTY)
    assert d.algorithm == "sha512" and len(d.hex) == 128
    assert digest_bytes(b"", "sha512") == d


@pytest.mark.parametrize("bad", [
    "",
    "sha256",
    "sha256:",
    ":" + HEX64,
    "sha256:" + HEX64[:-1],                 # 63 hex
    "sha256:" + HEX64 + "0",                # 65 hex
    "sha256:" + HEX64.upper(),              # uppercase hex
    "SHA256:" + HEX64,                      # uppercase algorithm
    "sha256:" + "g" * 64,                   # not hex
    "md5:d41d8cd98f00b204e9800998ecf8427e",  # unregistered algorithm
    "sha384:" + "0" * 96,
    "sha512:" + HEX64,                      # sha512 needs 128 hex
    " sha256:" + HEX64,
    "sha256:" + HEX64 + "\n",
    "sha256:" + HEX64[:32] + "/" + HEX64[32:63],
    "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",  # valid grammar, unknown algorithm
])
def test_invalid_digests_are_refused(bad):
    with pytest.raises(InvalidDigestError):
        Digest(bad)
    assert not Digest.is_valid(bad)


def test_invalid_digest_is_a_value_error_and_names_the_value():
    with pytest.raises(ValueError, match="md5"):
        Digest("md5:d41d8cd98f00b204e9800998ecf8427e")


@pytest.mark.parametrize("value", [None, 42, b"sha256:" + HEX64.encode()])
def test_non_strings_are_refused(value):
    with pytest.raises(InvalidDigestError, match="must be a string"):
        Digest(value)  # type: ignore[arg-type]


def test_digest_bytes_matches_hashlib():
    assert digest_bytes(b"") == EMPTY_SHA256
    assert digest_bytes(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()


def test_hasher_counts_bytes():
    h = Hasher()
    h.update(b"abc")
    h.update(memoryview(b"defg"))
    assert h.size == 7
    assert h.digest() == "sha256:" + hashlib.sha256(b"abcdefg").hexdigest()
    with pytest.raises(InvalidDigestError):
        Hasher("md5")


def test_digest_stream_over_several_chunks():
    data = bytes(range(256)) * ((3 * CHUNK_SIZE) // 256 + 7)
    assert digest_stream(io.BytesIO(data)) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))

    class ReadOnly:  # no readinto: the read() path
        def __init__(self, raw: bytes) -> None:
            self._f = io.BytesIO(raw)

        def read(self, n: int = -1) -> bytes:
            return self._f.read(n)

    assert digest_stream(ReadOnly(data), "sha512")[0] == "sha512:" + hashlib.sha512(data).hexdigest()


def test_digest_file(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 1000)
    assert digest_file(str(path)) == ("sha256:" + hashlib.sha256(b"x" * 1000).hexdigest(), 1000)


def test_hashing_reader_hashes_what_passes_through():
    data = b"0123456789" * 1000
    reader = HashingReader(io.BytesIO(data))
    assert reader.read(10) == b"0123456789"
    buf = bytearray(5)
    assert reader.readinto(buf) == 5 and bytes(buf) == b"01234"
    reader.drain()
    assert reader.size == len(data)
    assert reader.digest() == "sha256:" + hashlib.sha256(data).hexdigest()


def test_verify_raises_a_mismatch_naming_the_blob():
    verify("x", EMPTY_SHA256, "sha256:" + HEX64)
    with pytest.raises(DigestMismatchError) as info:
        verify("layer foo", EMPTY_SHA256, digest_bytes(b"a"))
    assert info.value.what == "layer foo"
    assert str(info.value) == (f"layer foo: digest mismatch, expected {EMPTY_SHA256}, "
                               f"got {digest_bytes(b'a')}")


def test_schema1_empty_layer_is_the_gzip_of_an_empty_tar():
    # the 32 bytes Docker's schema1 manifests use for every no-op history step
    blob = bytes([31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 98, 24, 5, 163, 96, 20, 140, 88,
                  0, 8, 0, 0, 255, 255, 46, 175, 181, 239, 0, 4, 0, 0])
    assert digest_bytes(blob) == SCHEMA1_EMPTY_LAYER
    assert gzip.decompress(blob) == b"\0" * 1024
    assert SCHEMA1_EMPTY_LAYER != EMPTY_SHA256

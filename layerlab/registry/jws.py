"""Verifying the signatures of a signed Docker schema1 manifest (libtrust "pretty" JWS).

A signed schema1 manifest is its payload (the manifest without ``signatures``) plus one
or more JWS signatures.  Each signature's ``protected`` header (base64url JSON) gives
``formatLength`` and ``formatTail``: the payload is ``body[:formatLength] + formatTail``.
The signing input is ``protected + "." + base64url(payload)``; the key is in the
unprotected header, as a JWK (``EC`` P-256/384/521 or ``RSA``) or an ``x5c`` certificate
chain whose first certificate holds it (as libtrust, the chain itself is not checked).
A JWK's ``kid``, when present, must be the key's libtrust fingerprint.

As Distribution 2.8.2 with schema1 enabled: a manifest that cannot be checked (no
signatures, a malformed key or header) is 400 ``MANIFEST_INVALID``; a signature that
does not verify is 400 ``MANIFEST_UNVERIFIED``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from .codes import APIError

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48), "P-521": (ec.SECP521R1, 66)}
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def _invalid(message: str) -> APIError:
    return APIError("MANIFEST_INVALID", f"schema1 signature: {message}")


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise _invalid(f"{what} is not a string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _invalid(f"{what} is not base64url") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def key_id(key: PublicKey) -> str:
    """libtrust's fingerprint of a public key: base32 of the first 240 bits of the SHA-256
    of its DER SubjectPublicKeyInfo, in groups of four separated by colons."""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


def _integer(jwk: dict, name: str) -> int:
    return int.from_bytes(_b64decode(jwk.get(name), f"JWK {name}"), "big")


def _jwk_key(jwk: Any) -> PublicKey:
    if not isinstance(jwk, dict):
        raise _invalid("jwk is not an object")
    try:
        if jwk.get("kty") == "EC":
            curve, octets = _CURVES.get(jwk.get("crv"), (None, 0))
            if curve is None:
                raise _invalid(f"unsupported EC curve {jwk.get('crv')!r}")
            for name in ("x", "y"):
                if len(_b64decode(jwk.get(name), f"JWK {name}")) != octets:
                    raise _invalid(f"EC {name} coordinate is not {octets} bytes")
            key: PublicKey = ec.EllipticCurvePublicNumbers(
                _integer(jwk, "x"), _integer(jwk, "y"), curve()).public_key()
        elif jwk.get("kty") == "RSA":
            key = rsa.RSAPublicNumbers(_integer(jwk, "e"), _integer(jwk, "n")).public_key()
        else:
            raise _invalid(f"unsupported key type {jwk.get('kty')!r}")
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _invalid(f"bad public key: {exc}") from None
    if "kid" in jwk and jwk["kid"] != key_id(key):
        raise _invalid(f"key ID {jwk['kid']!r} does not match the key ({key_id(key)})")
    return key


def _x5c_key(chain: Any) -> PublicKey:
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise _invalid("x5c is not a list of certificates")
    try:
        der = base64.b64decode(chain[0], validate=True)
        key = x509.load_der_x509_certificate(der).public_key()
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"bad x5c certificate: {exc}") from None
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise _invalid("x5c certificate key is neither EC nor RSA")
    return key


def _check(key: PublicKey, alg: Any, signature: bytes, signing_input: bytes) -> None:
    family, bits = (alg[:2], alg[2:]) if isinstance(alg, str) else ("", "")
    digest = _HASHES.get(bits)
    if digest is None or family not in ("ES", "RS"):
        raise _invalid(f"unsupported algorithm {alg!r}")
    try:
        if family == "ES":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise _invalid(f"{alg} needs an EC key")
            half = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * half:
                raise InvalidSignature
            r = int.from_bytes(signature[:half], "big")
            s = int.from_bytes(signature[half:], "big")
            key.verify(utils.encode_dss_signature(r, s), signing_input, ec.ECDSA(digest()))
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                raise _invalid(f"{alg} needs an RSA key")
            key.verify(signature, signing_input, padding.PKCS1v15(), digest())
    except InvalidSignature:
        raise APIError("MANIFEST_UNVERIFIED", "manifest failed signature verification") from None


def verified_payload(body: bytes, signatures: Any) -> bytes:
    """The payload of a signed schema1 manifest once every signature verifies over it."""
    if not isinstance(signatures, list) or not signatures:
        raise _invalid("no signatures (unsigned schema1 manifests are refused)")
    payload: bytes | None = None
    for n, entry in enumerate(signatures):
        if not isinstance(entry, dict) or not isinstance(entry.get("header"), dict):
            raise _invalid(f"signatures[{n}] has no header")
        protected = entry.get("protected")
        try:
            header = json.loads(_b64decode(protected, "protected header"))
            length, tail = int(header["formatLength"]), _b64decode(header["formatTail"], "formatTail")
        except (KeyError, TypeError, ValueError):
            raise _invalid(f"signatures[{n}]: protected header without formatLength/formatTail") \
                from None
        if not 0 < length <= len(body):
            raise _invalid(f"signatures[{n}]: formatLength {length} is outside the manifest")
        this = body[:length] + tail
        if payload is not None and this != payload:
            raise _invalid("signatures disagree on the payload")
        payload = this
        unprotected = entry["header"]
        if "jwk" in unprotected:
            key = _jwk_key(unprotected["jwk"])
        elif "x5c" in unprotected:
            key = _x5c_key(unprotected["x5c"])
        else:
            raise _invalid(f"signatures[{n}] names no key (jwk or x5c)")
        signature = _b64decode(entry.get("signature"), "signature")
        _check(key, unprotected.get("alg"), signature, f"{protected}.{_b64encode(payload)}".encode())
    assert payload is not None
    return payload

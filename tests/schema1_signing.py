"""Signing Docker schema1 manifests as libtrust does, for the tests of the registry's checks."""

from __future__ import annotations

import base64
import datetime
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

from layerlab.registry.jws import key_id


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwk(key) -> dict:
    """The public JWK of a private key, with its libtrust ``kid``."""
    pub = key.public_key()
    n = pub.public_numbers()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        size = (pub.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[pub.curve.key_size]
        return {"crv": crv, "kid": key_id(pub), "kty": "EC",
                "x": b64(n.x.to_bytes(size, "big")), "y": b64(n.y.to_bytes(size, "big"))}
    return {"e": b64(n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")), "kid": key_id(pub),
            "kty": "RSA", "n": b64(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big"))}


def certificate_chain(key) -> list[str]:
    """A self-signed certificate for ``key``, as an ``x5c`` header holds it."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "layerlab test")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
    return [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]


def sign(payload: bytes, key, *, header: dict | None = None, tamper: bool = False) -> bytes:
    """``payload`` (pretty JSON ending in ``\\n}``) with one libtrust signature by ``key``.

    ``header`` replaces the unprotected header (default: ``{"jwk": ..., "alg": ...}``);
    ``tamper`` flips a bit of the signature."""
    cut = payload.rindex(b"\n}")
    protected = b64(json.dumps({"formatLength": cut, "formatTail": b64(payload[cut:]),
                                "time": "2026-01-01T00:00:00Z"}).encode())
    signing_input = f"{protected}.{b64(payload)}".encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = utils.decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature, alg = r.to_bytes(32, "big") + s.to_bytes(32, "big"), "ES256"
    else:
        signature, alg = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()), "RS256"
    if tamper:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    entry = {"header": header or {"jwk": jwk(key), "alg": alg}, "signature": b64(signature),
             "protected": protected}
    return payload[:cut] + b',\n   "signatures": [' + json.dumps(entry).encode() + b"]" + payload[cut:]


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)

"""SET signing (RFC 8417 over RFC 7515 compact JWS) with `joserfc`, and the public JWKS.

Keys come as a JWK Set of private keys. The first key of each algorithm signs; the others
are only published, which is how a key is rotated without breaking receivers: put the new
key first, keep the old one listed until receivers have verified what it signed, then drop
it. `kid` is each key's RFC 7638 thumbprint unless the JWK names one.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

from handover.domain.ssf.events import SetClaims
from handover.domain.ssf.streams import SigningAlgorithm

SET_TYPE = "secevent+jwt"


class InvalidSigningKeys(ValueError):
    pass


def _algorithm(key: ECKey | RSAKey) -> SigningAlgorithm:
    if isinstance(key, ECKey) and key.curve_name == "P-256":
        return SigningAlgorithm.ES256
    if isinstance(key, RSAKey):
        return SigningAlgorithm.RS256
    raise InvalidSigningKeys("SET signing keys must be EC P-256 (ES256) or RSA (RS256) keys")


def _with_kid(key: ECKey | RSAKey) -> ECKey | RSAKey:
    if not key.kid:
        key.ensure_kid()
    return key


class JoseSetSigner:
    """The services' `SetSigner`, and the source of the transmitter's JWKS."""

    def __init__(
        self,
        keys: Iterable[ECKey | RSAKey],
        later: Callable[[], ECKey | RSAKey] | None = None,
    ) -> None:
        """`later` makes one more key when it is first needed (a development RSA key is
        slow to generate and most runs never use it)."""
        self._later = later
        self._lock = threading.Lock()
        self.keys = [_with_kid(key) for key in keys]
        self.current: dict[SigningAlgorithm, ECKey | RSAKey] = {}
        for key in self.keys:
            if not key.is_private:
                raise InvalidSigningKeys(f"key {key.kid} has no private part")
            self.current.setdefault(_algorithm(key), key)
        if SigningAlgorithm.ES256 not in self.current:
            raise InvalidSigningKeys("an ES256 (EC P-256) key is required: it is the default")

    def _complete(self) -> None:
        with self._lock:
            if self._later is not None:
                key = _with_kid(self._later())
                self.keys.append(key)
                self.current.setdefault(_algorithm(key), key)
                self._later = None

    def sign(self, claims: SetClaims, algorithm: SigningAlgorithm) -> str:
        if algorithm not in self.current:
            self._complete()
        key = self.current.get(algorithm)
        if key is None:
            raise InvalidSigningKeys(f"no {algorithm} key is configured")
        header = {"alg": algorithm.value, "typ": SET_TYPE, "kid": key.kid}
        payload = orjson.dumps(claims.as_dict())
        return jws.serialize_compact(header, payload, key, algorithms=[algorithm.value])

    def algorithms(self) -> list[str]:
        self._complete()
        return [algorithm.value for algorithm in self.current]

    def jwks(self) -> dict[str, Any]:
        """The public keys, each with `kid`, `use: sig` and `alg`."""
        self._complete()
        return {
            "keys": [
                key.as_dict(private=False) | {"use": "sig", "alg": _algorithm(key).value}
                for key in self.keys
            ]
        }


def load_keys(text: str) -> JoseSetSigner:
    """A signer from a JWK Set (JSON) of private keys, or `@path` to a file holding one."""
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        data = json.loads(text)
        keys: list[ECKey | RSAKey] = []
        for jwk in data["keys"]:
            kind = jwk.get("kty")
            if kind == "EC":
                keys.append(ECKey.import_key(jwk))
            elif kind == "RSA":
                keys.append(RSAKey.import_key(jwk))
            else:
                raise InvalidSigningKeys(f"unsupported kty {kind!r}; use EC (P-256) or RSA")
    except InvalidSigningKeys:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidSigningKeys(f"HANDOVER_SSF_SIGNING_KEYS is not a JWK Set: {exc}") from None
    return JoseSetSigner(keys)


def generate_keys() -> dict[str, Any]:
    """A fresh private JWK Set (one ES256 and one RS256 key) for HANDOVER_SSF_SIGNING_KEYS."""
    es = _with_kid(ECKey.import_key(ec.generate_private_key(ec.SECP256R1())))
    rs = _with_kid(RSAKey.import_key(rsa.generate_private_key(65537, 2048)))
    return {"keys": [es.as_dict(private=True), rs.as_dict(private=True)]}


def development_signer(seed: bytes, cache_dir: Path) -> JoseSetSigner:
    """Development keys: ES256 derived from `seed`; RS256 generated once and kept in a file
    named after the seed, so the API and every worker on this machine share it."""
    scalar = int.from_bytes(seed, "big") % (2**256 - 2**224) + 1
    es = ECKey.import_key(ec.derive_private_key(scalar, ec.SECP256R1()))
    path = cache_dir / f"ssf-dev-rs256-{seed.hex()[:16]}.pem"
    return JoseSetSigner([es], later=lambda: RSAKey.import_key(_shared_rsa_pem(path)))


def _shared_rsa_pem(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    pem = rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written whole under another name, then linked into place: a process racing us reads
    # either no file or the complete key of whichever process linked first.
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".ssf-dev-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.link(partial, path)
    except FileExistsError:
        return path.read_bytes()
    finally:
        os.unlink(partial)
    return pem

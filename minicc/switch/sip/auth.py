"""HTTP digest authentication for SIP, server side (RFC 3261 §22, RFC 7616, RFC 8760)."""

from __future__ import annotations

import hashlib
from enum import Enum


class DigestAlgorithm(Enum):
    MD5 = "MD5"
    SHA256 = "SHA-256"

    def hash(self, data: str) -> str:
        name = "md5" if self is DigestAlgorithm.MD5 else "sha256"
        return hashlib.new(name, data.encode("utf-8")).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: DigestAlgorithm) -> str:
    """Return HA1 = H(username:realm:password) (RFC 7616 §3.4.2).

    Storing HA1 per algorithm instead of the password means a leaked database does not
    reveal the secret, only credentials for that one realm.
    """
    return algorithm.hash(f"{username}:{realm}:{password}")

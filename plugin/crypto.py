"""Secrets at rest: mail passwords are Fernet tokens under ``IE_SECRET_KEYS``.

The first key encrypts; every key decrypts, so keys can be rotated: add a new
key in front, run ``flask integrated-email rotate-keys``, then drop the old.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretKeyError(RuntimeError):
    """The configured keys cannot be used or cannot read a stored secret."""


class SecretBox:
    def __init__(self, keys: list[str]):
        if not keys:
            raise SecretKeyError(
                "Integrated Email has no encryption key. Set IE_SECRET_KEYS to one or more "
                "Fernet keys (python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())').")
        try:
            self._fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                "IE_SECRET_KEYS holds a value that is not a Fernet key "
                "(32 url-safe base64-encoded bytes).") from exc
        self._multi = MultiFernet(self._fernets)
        self._keys = [k.encode() if isinstance(k, str) else k for k in keys]

    def encrypt(self, plain: str) -> str:
        """Encrypt plaintext with the first key."""
        return self._multi.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt token with whichever key made it (SecretKeyError if none)."""
        try:
            return self._multi.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise SecretKeyError(
                "A stored mail password cannot be decrypted with the configured "
                "IE_SECRET_KEYS. Put back the key it was encrypted with.") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the first key."""
        try:
            return self._multi.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise SecretKeyError(
                "A stored mail password cannot be decrypted with the configured "
                "IE_SECRET_KEYS; rotation stopped without changing anything.") from exc

    def signing_keys(self, purpose: str) -> list[bytes]:
        """HMAC keys for ``purpose``, one per configured key, the signing one (from the
        first key) last, as itsdangerous wants them: rotation keeps old links valid."""
        return [hmac.new(k, b"integrated-email:" + purpose.encode(), hashlib.sha256).digest()
                for k in reversed(self._keys)]

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is already encrypted under the first key."""
        try:
            self._fernets[0].decrypt(token.encode("ascii"))
            return True
        except InvalidToken:
            return False


def load_keys(config: dict) -> list[str]:
    """The Fernet keys of the config (the first encrypts), or SecretKeyError."""
    raw = config.get("IE_SECRET_KEYS")
    if raw:
        if isinstance(raw, str):
            return [k.strip() for k in raw.split(",") if k.strip()]
        return [str(k) for k in raw]
    path = config.get("IE_SECRET_KEY_FILE")
    if path:
        p = Path(path)
        if not p.exists() and config.get("IE_GENERATE_SECRET_KEY"):
            p.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(Fernet.generate_key().decode() + "\n")
        if p.exists():
            return [k.strip() for k in p.read_text().split(",") if k.strip()]
    return []

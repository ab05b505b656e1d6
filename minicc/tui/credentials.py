"""Where the consoles keep who they are: the server URL, tenant and extension in
``config.json`` under the platformdirs config dir, and the session token (never the password)
in the system keyring.

Where no keyring backend works (a headless server, a container) the token goes in a file
readable by its owner only (0600) in the same dir, and :attr:`Credentials.where` says so,
so the app can tell the user. ``MINICC_CONFIG_DIR`` overrides the directory (tests, several
identities on one machine).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

__all__ = ["CredentialStore", "Credentials", "Profile"]

SERVICE = "minicc"
KEYRING = "system keyring"


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """What is asked on first run (the password is not kept)."""

    url: str
    tenant: str
    extension: str

    @property
    def account(self) -> str:
        return f"{self.extension}@{self.tenant} {self.url}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    profile: Profile
    token: str
    where: str
    """Where the token is kept: ``system keyring`` or the path of the 0600 file."""


def _keyring_works() -> bool:
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring):
            return False
        # "chainer" with no usable backend behind it also means no keyring.
        return getattr(backend, "priority", 0) > 0
    except Exception:  # any import or backend failure means: use the file
        return False


class CredentialStore:
    """Load, save and forget the console's identity."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        name: str = "agent",
        use_keyring: bool | None = None,
    ) -> None:
        self.name = name
        env = os.environ.get("MINICC_CONFIG_DIR")
        self.dir = directory or (Path(env) if env else Path(platformdirs.user_config_dir("minicc")))
        self.use_keyring = _keyring_works() if use_keyring is None else use_keyring

    def _account(self, profile: Profile) -> str:
        return f"{self.name} {profile.account}"

    @property
    def config_file(self) -> Path:
        return self.dir / f"{self.name}.json"

    @property
    def token_file(self) -> Path:
        return self.dir / f"{self.name}.token"

    def profile(self) -> Profile | None:
        """The saved URL, tenant and extension (for the login form), if any."""
        try:
            data = json.loads(self.config_file.read_text(encoding="utf-8"))
            return Profile(url=data["url"], tenant=data["tenant"], extension=data["extension"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load(self) -> Credentials | None:
        profile = self.profile()
        if profile is None:
            return None
        if self.use_keyring:
            import keyring

            try:
                token = keyring.get_password(SERVICE, self._account(profile))
            except Exception:
                token = None
            return Credentials(profile=profile, token=token, where=KEYRING) if token else None
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if not token:
            return None
        return Credentials(profile=profile, token=token, where=str(self.token_file))

    def save(self, profile: Profile, token: str) -> Credentials:
        """Keep the profile and the token; returns where the token went."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(asdict(profile), indent=2), encoding="utf-8")
        if self.use_keyring:
            import keyring

            try:
                keyring.set_password(SERVICE, self._account(profile), token)
                return Credentials(profile=profile, token=token, where=KEYRING)
            except Exception:
                self.use_keyring = False  # a backend that fails on use: fall back below
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token)
        os.chmod(self.token_file, 0o600)  # an older file may have had wider rights
        return Credentials(profile=profile, token=token, where=str(self.token_file))

    def forget_token(self) -> None:
        """Drop the token (logout, or the server refused it); the profile stays."""
        profile = self.profile()
        if self.use_keyring and profile is not None:
            import keyring

            # Nothing stored is the wanted end state: a failure to delete is no failure.
            with contextlib.suppress(Exception):
                keyring.delete_password(SERVICE, self._account(profile))
        self.token_file.unlink(missing_ok=True)

"""Where the consoles keep the login: profile in the config dir, token in the keyring or a
0600 file, never the password; nothing stored after a refused login."""

from __future__ import annotations

import stat
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from minicc.tui.client import Unauthorized
from minicc.tui.credentials import CredentialStore, Profile
from minicc.tui.login import log_in, storage_notice
from tests.unit.tui.conftest import PASSWORDS, Live


async def test_a_good_login_keeps_the_token_in_a_private_file(
    live: Live, store: CredentialStore
) -> None:
    profile = Profile(url=live.url, tenant="acme.test", extension="1001")
    saved = await log_in(store, profile, PASSWORDS["1001"])
    assert saved.token.startswith("mcc_") and saved.where == str(store.token_file)
    assert stat.S_IMODE(store.token_file.stat().st_mode) == 0o600
    assert "no system keyring here" in storage_notice(saved)
    assert PASSWORDS["1001"] not in store.config_file.read_text()
    assert PASSWORDS["1001"] not in store.token_file.read_text()
    assert store.load() == saved
    store.forget_token()
    assert store.load() is None and store.profile() == profile


async def test_a_wrong_password_stores_nothing(live: Live, store: CredentialStore) -> None:
    profile = Profile(url=live.url, tenant="acme.test", extension="1001")
    with pytest.raises(Unauthorized, match="wrong tenant, extension or password"):
        await log_in(store, profile, "wrong")
    assert not store.dir.exists() or not any(store.dir.iterdir())


class MemoryKeyring(KeyringBackend):
    """A keyring backend that keeps secrets in a dict (what a desktop's keyring does on disk)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.kept.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.kept[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.kept[(service, username)]


def test_keyring_is_used_when_a_backend_works(tmp_path: Path) -> None:
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        store = CredentialStore(tmp_path, name="agent")
        assert store.use_keyring
        profile = Profile(url="http://127.0.0.1:1", tenant="t", extension="1")
        saved = store.save(profile, "mcc_x")
        assert saved.where == "system keyring" and not store.token_file.exists()
        assert list(backend.kept.values()) == ["mcc_x"]
        assert store.load() == saved
        store.forget_token()
        assert backend.kept == {} and store.load() is None
    finally:
        keyring.set_keyring(before)

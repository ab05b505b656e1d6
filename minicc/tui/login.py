"""The login screen both consoles open on first run (or when the server ends the session).

Agents log in with their extension's SIP password; a supervisor pastes a long-lived token an
administrator made (``minicc token create --role supervisor``), since a password login is
always an agent's session. The password is sent once and never stored; on success the screen
saves the token (:mod:`minicc.tui.credentials`) and dismisses itself with the credentials.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static

from minicc.tui.client import ApiClient, ApiError
from minicc.tui.credentials import KEYRING, Credentials, CredentialStore, Profile

__all__ = ["LoginScreen", "log_in"]


async def log_in(
    store: CredentialStore, profile: Profile, secret: str, *, token_login: bool = False
) -> Credentials:
    """Check the password (or token) with the server and store the token.

    Raises:
        ApiError: the server refused (wrong password, unreachable...); nothing is stored.
    """
    async with ApiClient(profile.url) as client:
        if token_login:
            client.token = secret
            me = await client.me()
            profile = Profile(url=profile.url, tenant=me["tenant"], extension=profile.extension)
            token = secret
        else:
            session = await client.login(profile.tenant, profile.extension, secret)
            token = session["token"]
    return store.save(profile, token)


def storage_notice(credentials: Credentials) -> str:
    if credentials.where == KEYRING:
        return "token kept in the system keyring"
    return f"no system keyring here: token kept in {credentials.where} (readable by you only)"


class LoginScreen(Screen[Credentials]):
    """URL, tenant, extension and password (or token); dismisses with the stored credentials."""

    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    LoginScreen #form { width: 64; height: auto; border: round $accent; padding: 0 1; }
    LoginScreen Input { margin: 0; }
    LoginScreen #error { color: $error; height: auto; }
    LoginScreen #reason { color: $warning; height: auto; }
    """

    def __init__(
        self, store: CredentialStore, *, token_login: bool = False, reason: str = ""
    ) -> None:
        super().__init__()
        self.store = store
        self.token_login = token_login
        self.reason = reason

    def compose(self) -> ComposeResult:
        saved = self.store.profile()
        with Vertical(id="form"):
            yield Static("[b]minicc[/b] — log in", id="title")
            if self.reason:
                yield Label(self.reason, id="reason")
            yield Input(
                saved.url if saved else "http://127.0.0.1:8080",
                placeholder="server URL",
                id="url",
            )
            if not self.token_login:
                yield Input(
                    saved.tenant if saved else "", placeholder="tenant (SIP domain)", id="tenant"
                )
            yield Input(
                saved.extension if saved else "",
                placeholder="your phone's extension" if self.token_login else "extension",
                id="extension",
            )
            yield Input(
                placeholder="supervisor token" if self.token_login else "password",
                password=True,
                id="secret",
            )
            yield Button("Log in", id="login", variant="primary")
            yield Label("", id="error")

    def on_mount(self) -> None:
        for field in ("url", "tenant", "extension", "secret"):
            widgets = self.query(f"#{field}")
            if widgets and isinstance(widgets.first(), Input) and not widgets.first(Input).value:
                widgets.first(Input).focus()
                return
        self.query_one("#secret", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#login")
    def submit(self) -> None:
        values = {i.id: i.value.strip() for i in self.query(Input) if i.id}
        missing = [k for k in ("url", "tenant", "extension", "secret") if values.get(k) == ""]
        if self.token_login and values.get("extension") == "":
            missing.remove("extension")  # the phone is needed only to listen in
        if missing:
            self.show_error(f"{missing[0]}: please fill it in")
            self.query_one(f"#{missing[0]}", Input).focus()
            return
        profile = Profile(
            url=values["url"],
            tenant=values.get("tenant", ""),
            extension=values.get("extension", ""),
        )
        self.show_error("logging in…")
        self.attempt(profile, values["secret"])

    def show_error(self, text: str) -> None:
        self.query_one("#error", Label).update(text)

    @work(exclusive=True, group="login")
    async def attempt(self, profile: Profile, secret: str) -> None:
        try:
            credentials = await log_in(self.store, profile, secret, token_login=self.token_login)
        except ApiError as exc:
            self.show_error(str(exc))
            self.query_one("#secret", Input).value = ""
            return
        self.dismiss(credentials)

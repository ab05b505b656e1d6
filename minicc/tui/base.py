"""What both consoles share: the credentials, the API client, the event-stream worker that
turns server events into Textual messages, the one-line notice, and "back to login" when
the server no longer takes the token.

Subclasses implement :meth:`ConsoleApp.resync` (re-read the picture over REST) and
:meth:`ConsoleApp.on_server_event`. ``clock`` is injectable so snapshot tests freeze time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from textual import on, work
from textual.app import App
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Static

from minicc.tui.client import (
    ApiClient,
    ApiError,
    Connected,
    Disconnected,
    EventFollower,
    NotAvailable,
    ServerEvent,
    Unauthorized,
)
from minicc.tui.credentials import Credentials, CredentialStore
from minicc.tui.login import LoginScreen, storage_notice

__all__ = ["ConsoleApp", "Notice"]


class Notice(Static):
    """The one-line message under the screen ("not available on this server yet", ...)."""

    DEFAULT_CSS = """
    Notice { height: 1; padding: 0 1; color: $text-muted; }
    Notice.-error { color: $error; }
    """

    def say(self, text: str, *, error: bool = False) -> None:
        self.update(text)
        self.set_class(error, "-error")


class ConsoleApp(App[None]):
    """Base of the agent console and the wallboard."""

    TOKEN_LOGIN = False
    ENABLE_COMMAND_PALETTE = False

    class StreamItem(Message):
        """Something from the event stream (posted by the stream worker)."""

        def __init__(self, item: Connected | Disconnected | ServerEvent) -> None:
            super().__init__()
            self.item = item

    class SessionEnded(Message):
        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def __init__(
        self,
        store: CredentialStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        offline: bool = False,
        base_delay: float = 0.5,
    ) -> None:
        super().__init__()
        self.store = store or CredentialStore(name=self.store_name())
        self.clock = clock
        self.offline = offline
        self.base_delay = base_delay
        self.api: ApiClient | None = None
        self.credentials: Credentials | None = None
        self.stream_state = "offline"

    @classmethod
    def store_name(cls) -> str:
        return "agent"

    # -- start, login, logout ------------------------------------------------------------

    def on_mount(self) -> None:
        if self.offline:
            return
        credentials = self.store.load()
        if credentials is None:
            self.ask_login("")
        else:
            self.start_session(credentials)

    def ask_login(self, reason: str) -> None:
        self.push_screen(
            LoginScreen(self.store, token_login=self.TOKEN_LOGIN, reason=reason),
            self._logged_in,
        )

    def _logged_in(self, credentials: Credentials | None) -> None:
        if credentials is not None:
            self.start_session(credentials)
            self.say(storage_notice(credentials))

    def start_session(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.api = ApiClient(credentials.profile.url, credentials.token)
        self.follow_events(credentials)
        self.run_api(self.resync)

    async def on_unmount(self) -> None:
        if self.api is not None:
            await self.api.aclose()

    @on(SessionEnded)
    def session_ended(self, message: SessionEnded) -> None:
        self.workers.cancel_group(self, "events")
        self.store.forget_token()
        self.credentials = None
        self.ask_login(f"please log in again: {message.reason}")

    # -- the event stream ----------------------------------------------------------------

    @work(exclusive=True, group="events", exit_on_error=False)
    async def follow_events(self, credentials: Credentials) -> None:
        follower = EventFollower(
            credentials.profile.url, credentials.token, base_delay=self.base_delay
        )
        try:
            async for item in follower:
                self.post_message(self.StreamItem(item))
        except Unauthorized as exc:
            self.post_message(self.SessionEnded(exc.message))

    @on(StreamItem)
    def stream_item(self, message: StreamItem) -> None:
        item = message.item
        if isinstance(item, Connected):
            if self.stream_state == "reconnecting" or item.gap:
                self.say("reconnected" + (": events were lost, re-read" if item.gap else ""))
            self.stream_state = "live"
            if item.gap or item.replayed == 0:
                # A gap, or a fresh stream: the picture may be stale. Re-read it.
                self.run_api(self.resync)
        elif isinstance(item, Disconnected):
            self.stream_state = "reconnecting"
            self.say(f"{item.reason}; retrying in {item.retry_in:.0f} s", error=True)
        else:
            try:
                self.on_server_event(item)
            except NoMatches:
                return  # an event that arrives while the app shuts down: nothing to show
        self.stream_changed()

    def stream_changed(self) -> None:
        """Hook: the stream went live or down."""

    def on_server_event(self, event: ServerEvent) -> None:
        raise NotImplementedError

    async def resync(self) -> None:
        raise NotImplementedError

    # -- API calls -----------------------------------------------------------------------

    def run_api(self, action: Callable[[], Awaitable[Any]], done: str = "") -> None:
        """Run one API action in a worker; its failure becomes a notice, never a traceback."""
        self.run_worker(self._guarded(action, done), group="api", exit_on_error=False)

    async def _guarded(self, action: Callable[[], Awaitable[Any]], done: str) -> None:
        try:
            await action()
        except Unauthorized as exc:
            self.post_message(self.SessionEnded(exc.message))
        except NotAvailable as exc:
            self.say(exc.message, error=True)
        except ApiError as exc:
            self.say(exc.message, error=True)
        else:
            if done:
                self.say(done)

    def say(self, text: str, *, error: bool = False) -> None:
        for notice in self.query(Notice):
            notice.say(text, error=error)

"""A tenant's wrap-up disposition codes (``resolved``, ``callback-promised``...)."""

from __future__ import annotations

import re

from minicc.store.ccbase import CallCenterBase, OptionError
from minicc.store.database import StoreError

__all__ = ["DispositionTables"]

_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")


class DispositionTables(CallCenterBase):
    """Disposition codes (a mixin of :class:`~minicc.store.callcenter.CallCenterStore`)."""

    def add_disposition(self, code: str, label: str | None = None) -> None:
        """Add (or relabel) a wrap-up disposition code such as ``resolved``.

        Raises:
            OptionError: a code that is not lowercase letters, digits, '-' or '_'.
        """
        if not _CODE.fullmatch(code):
            raise OptionError(
                f"disposition {code!r}", "code", "use 1-32 lowercase letters, digits, '-' or '_'"
            )
        self.db.execute_write(
            "INSERT INTO dispositions (code, label) VALUES (?, ?)"
            " ON CONFLICT (code) DO UPDATE SET label = excluded.label",
            (code, label or code.replace("-", " ").capitalize()),
        )

    def remove_disposition(self, code: str) -> None:
        """Raises StoreError for an unknown code."""
        if self.db.execute_write("DELETE FROM dispositions WHERE code = ?", (code,)) == 0:
            raise StoreError(f"no disposition code {code!r}")

    def list_dispositions(self) -> list[tuple[str, str]]:
        """(code, label) in the order they were added."""
        rows = self.db.query("SELECT code, label FROM dispositions ORDER BY rowid")
        return [(row[0], row[1]) for row in rows]

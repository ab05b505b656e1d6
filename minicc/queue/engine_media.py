"""What the engine says: IVR prompts, announcements and fixed prompts as WAV paths.

The IVR and the announcement builder speak in prompt *names*; the switch plays *files*. This
module resolves one to the other through the tenant's :class:`PromptCatalogue` (uploads
first, then the shipped set). A prompt that cannot be found is left out with a warning
rather than failing the whole sentence: the caller hears the rest, and the flow goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from minicc.queue import prompts as sentences
from minicc.queue.ivr import Play, Say
from minicc.queue.ivr_schema import PromptRef, SayKind
from minicc.queue.prompts import PromptCatalogue, PromptNotFound

__all__ = ["MOH", "Announcement", "PromptFiles"]

log = logging.getLogger(__name__)

MOH = "moh"


class Announcement:
    """Names of a queue announcement: position, estimated wait, callback offer."""

    @staticmethod
    def names(
        language: str,
        *,
        position: int | None,
        ewt: float | None,
        offer_callback: bool,
    ) -> list[str]:
        """The sentence, or an empty list when there is nothing to say.

        Args:
            position: 1-based place, or None to leave it out.
            ewt: estimated seconds, or None when there is no honest estimate.
            offer_callback: add "press 1 to be called back".
        """
        names: list[str] = []
        try:
            if position is not None:
                names += sentences.say_caller_number(position, language)
            if ewt is not None:
                names += sentences.say_estimated_wait(ewt, language)
        except ValueError as exc:  # no sentence rules for the caller's language
            log.warning("announcement in %s: %s", language, exc)
        if offer_callback:
            names.append("press_1_to_be_called_back")
        return names


class PromptFiles:
    """One tenant's prompt names -> files."""

    def __init__(self, catalogue: PromptCatalogue) -> None:
        self.catalogue = catalogue

    def files(self, language: str, names: Iterable[str]) -> list[Path]:
        """The files of ``names`` in ``language``; missing ones are skipped (and logged)."""
        found: list[Path] = []
        for name in names:
            try:
                found.append(self.catalogue.find(language, name).path)
            except (PromptNotFound, ValueError) as exc:
                log.warning("prompt skipped: %s", exc)
        return found

    def moh(self) -> list[Path]:
        """Music on hold (the tenant's own ``common/moh`` upload wins)."""
        return self.files("en", [MOH])

    def ivr(self, play: Play) -> list[Path]:
        """The files of an IVR :class:`Play`: prompt references and say items."""
        names: list[str] = []
        for item in play.items:
            if isinstance(item, PromptRef):
                names.append(item.name)
            else:
                names += self._say(item, play.language)
        return self.files(play.language, names)

    @staticmethod
    def _say(item: Say, language: str) -> list[str]:
        try:
            if item.kind is SayKind.DATE:
                return sentences.say_date(date.fromisoformat(item.value), language)
            return sentences.say(item.kind.value, item.value, language)
        except ValueError as exc:
            log.warning("cannot say %s %r in %s: %s", item.kind.value, item.value, language, exc)
            return []

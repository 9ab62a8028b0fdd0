"""The awareness states a room relays: who is here, their cursors, their names.

Awareness is not part of the document and is never stored. The room keeps the
latest state of every Yjs client so a newcomer sees everyone at once, and knows
which client ids arrived over which connection so it can announce their removal
when that connection ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .protocol import (
    AwarenessEntry,
    ProtocolError,
    decode_awareness_update,
    encode_awareness_update,
)

__all__ = ["Awareness", "AwarenessChange"]


@dataclass
class AwarenessChange:
    """What an awareness update changed.

    Attributes:
        added: Client ids that had no state and now have one.
        removed: Client ids that had a state and are now gone.
    """

    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)


class Awareness:
    """The latest awareness state of each Yjs client in a room.

    Attributes:
        entries: The latest entry of each client id, removals included (their
            clocks must keep increasing).
    """

    def __init__(self) -> None:
        self.entries: dict[int, AwarenessEntry] = {}

    @property
    def states(self) -> dict[int, Any]:
        """The present clients' states, decoded from JSON, by client id."""
        return {
            client_id: json.loads(entry.state)
            for client_id, entry in self.entries.items()
            if not entry.removed
        }

    def apply(self, update: bytes) -> AwarenessChange:
        """Record the entries of an awareness update that are newer than what is known.

        Args:
            update: An encoded awareness update.

        Returns:
            Which clients appeared and which left with this update.

        Raises:
            ProtocolError: The update is malformed or a state is not JSON.
        """
        entries = decode_awareness_update(update)
        for entry in entries:
            try:
                json.loads(entry.state)
            except ValueError as exc:
                raise ProtocolError(
                    f"The awareness state of client {entry.client_id} is not JSON."
                ) from exc
        change = AwarenessChange()
        for entry in entries:
            known = self.entries.get(entry.client_id)
            # Same rule as y-protocols: a newer clock wins, and at equal clocks a
            # removal wins so a "gone" message is never undone by a stale state.
            if known is None or entry.clock > known.clock or (entry.removed and not known.removed):
                self.entries[entry.client_id] = entry
                was_present = known is not None and not known.removed
                if entry.removed and was_present:
                    change.removed.add(entry.client_id)
                elif not entry.removed and not was_present:
                    change.added.add(entry.client_id)
        return change

    def encode_present(self) -> bytes | None:
        """An awareness update with every present client's state, or None when nobody is here."""
        present = [entry for entry in self.entries.values() if not entry.removed]
        return encode_awareness_update(present) if present else None

    def remove(self, client_ids: Iterable[int]) -> bytes | None:
        """Mark clients as gone.

        Returns:
            The awareness update announcing their removal, or None when none of
            them had a state.
        """
        removed: list[AwarenessEntry] = []
        for client_id in client_ids:
            known = self.entries.get(client_id)
            if known is None or known.removed:
                continue
            entry = AwarenessEntry(client_id, known.clock + 1, "null")
            self.entries[client_id] = entry
            removed.append(entry)
        return encode_awareness_update(removed) if removed else None

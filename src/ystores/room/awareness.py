"""The awareness states a room relays: who is here, their cursors, their names.

Awareness is not part of the document and is never stored. The room keeps the
latest state of every present Yjs client so a newcomer sees everyone at once,
and knows which client ids arrived over which connection so it can announce
their removal when that connection ends.

Memory is bounded: a client that leaves (its connection ends, or it announces
its own removal) is forgotten once its removal is broadcast, so the room holds
only present clients; each connection may bring at most `max_clients` ids and
each state is at most `max_state_size` bytes of JSON. (Forgetting a removed
client means a stale state for it, relayed late, would show it again until the
connection that relayed it ends: a short glitch, where remembering every id
ever seen let hostile clients grow the server without bound.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import MessageTooLargeError
from .protocol import (
    AwarenessEntry,
    ProtocolError,
    decode_awareness_update,
    encode_awareness_update,
)

__all__ = ["DEFAULT_MAX_CLIENTS", "DEFAULT_MAX_STATE_SIZE", "Awareness", "AwarenessChange"]

DEFAULT_MAX_CLIENTS = 64
"""How many awareness client ids one connection may bring, by default."""
DEFAULT_MAX_STATE_SIZE = 64 * 1024
"""The largest awareness state (JSON bytes) a client may set, by default."""


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
    """The latest awareness state of each present Yjs client in a room.

    Attributes:
        entries: The latest entry of each present client id.
        max_clients: How many client ids one connection may bring.
        max_state_size: The largest state, in bytes of JSON.
    """

    def __init__(
        self,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        max_state_size: int = DEFAULT_MAX_STATE_SIZE,
    ) -> None:
        self.entries: dict[int, AwarenessEntry] = {}
        self.max_clients = max_clients
        self.max_state_size = max_state_size

    @property
    def states(self) -> dict[int, Any]:
        """The present clients' states, decoded from JSON, by client id."""
        return {client_id: json.loads(entry.state) for client_id, entry in self.entries.items()}

    def apply(self, update: bytes, owned: set[int] | None = None) -> AwarenessChange:
        """Record the entries of an awareness update that are newer than what is known.

        Args:
            update: An encoded awareness update.
            owned: The client ids the sending connection brought so far; the
                update may not take it over `max_clients`. Updated in place.

        Returns:
            Which clients appeared and which left with this update.

        Raises:
            MessageTooLargeError: A state is over `max_state_size`.
            ProtocolError: The update is malformed, a state is not JSON, or it
                would take the connection over `max_clients` ids. Nothing is
                recorded then.
        """
        entries = decode_awareness_update(update)
        for entry in entries:
            if len(entry.state) > self.max_state_size:
                raise MessageTooLargeError(
                    f"An awareness state of {len(entry.state)} bytes is over the limit of "
                    f"{self.max_state_size}."
                )
            try:
                json.loads(entry.state)
            except ValueError as exc:
                raise ProtocolError(
                    f"The awareness state of client {entry.client_id} is not JSON."
                ) from exc
        if owned is not None:
            arriving = {e.client_id for e in entries if not e.removed} - self.entries.keys()
            if len(owned | arriving) > self.max_clients:
                raise ProtocolError(
                    f"A connection may bring at most {self.max_clients} awareness clients."
                )
        change = AwarenessChange()
        for entry in entries:
            known = self.entries.get(entry.client_id)
            if entry.removed:
                # A removal wins at an equal or newer clock; the client is forgotten.
                if known is not None and entry.clock >= known.clock:
                    del self.entries[entry.client_id]
                    change.removed.add(entry.client_id)
            elif known is None or entry.clock > known.clock:
                self.entries[entry.client_id] = entry
                if known is None:
                    change.added.add(entry.client_id)
        if owned is not None:
            owned |= change.added
            owned -= change.removed
        return change

    def encode_present(self) -> bytes | None:
        """An awareness update with every present client's state, or None when nobody is here."""
        return encode_awareness_update(self.entries.values()) if self.entries else None

    def remove(self, client_ids: Iterable[int]) -> bytes | None:
        """Forget clients (their connection ended).

        Returns:
            The awareness update announcing their removal, or None when none of
            them had a state.
        """
        removed: list[AwarenessEntry] = []
        for client_id in client_ids:
            known = self.entries.pop(client_id, None)
            if known is not None:
                removed.append(AwarenessEntry(client_id, known.clock + 1, "null"))
        return encode_awareness_update(removed) if removed else None

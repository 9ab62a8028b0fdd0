"""The room's document: a pycrdt `Doc` and the few engine calls the sync protocol needs.

`ystores.crdt` applies, merges and encodes updates; the sync protocol also needs
state vectors, diffs against a state vector and an update observer, which live
here so the rest of the room never touches the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pycrdt

from .. import crdt
from ..errors import InvalidUpdateError
from .protocol import ProtocolError

__all__ = ["RoomDocument"]


class RoomDocument:
    """A pycrdt document seen through the sync protocol.

    Attributes:
        ydoc: The pycrdt document; edit it directly to make server-side changes.
    """

    def __init__(self, ydoc: pycrdt.Doc[Any] | None = None) -> None:
        self.ydoc: pycrdt.Doc[Any] = ydoc if ydoc is not None else crdt.new_doc("pycrdt")
        self._subscription: pycrdt.Subscription | None = None

    def state_vector(self) -> bytes:
        """The document's state vector (the body of a sync step 1)."""
        return self.ydoc.get_state()

    def diff(self, state_vector: bytes) -> bytes:
        """An update with everything the holder of `state_vector` lacks.

        Raises:
            ProtocolError: `state_vector` does not decode.
        """
        try:
            with crdt.engine_call("The engine failed"):
                return self.ydoc.get_update(state_vector)
        except InvalidUpdateError as exc:
            raise ProtocolError(
                f"A state vector of {len(state_vector)} bytes does not decode."
            ) from exc

    def apply(self, update: bytes) -> None:
        """Apply one update.

        Raises:
            InvalidUpdateError: It does not decode, or the engine fails (even
                panics) applying it; the document is unchanged.
        """
        try:
            crdt.apply_update(self.ydoc, update)
        except InvalidUpdateError as exc:
            cause = exc.__cause__ or exc
            if not isinstance(cause, Exception):  # a panic: the engine failed on valid framing
                raise InvalidUpdateError(
                    f"An update of {len(update)} bytes made the CRDT engine panic; refused."
                ) from exc
            raise InvalidUpdateError(
                f"An update of {len(update)} bytes does not decode: {cause}"
            ) from exc

    def observe(self, callback: Callable[[bytes], None]) -> None:
        """Call `callback` with the update of every transaction that changes the document."""
        self.unobserve()
        self._subscription = self.ydoc.observe(lambda event: callback(event.update))

    def unobserve(self) -> None:
        """Stop calling the observer set by `observe`."""
        if self._subscription is not None:
            self.ydoc.unobserve(self._subscription)
            self._subscription = None

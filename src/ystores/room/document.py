"""The room's document: a pycrdt `Doc` or a y-py `YDoc`, seen through the sync protocol.

Every engine call goes through `ystores.crdt`, so a room serves documents of
either engine: y-py was the engine of ypy-websocket's rooms, pycrdt is the
default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import crdt
from ..errors import InvalidUpdateError
from .protocol import ProtocolError

__all__ = ["RoomDocument"]


class RoomDocument:
    """A pycrdt or y-py document seen through the sync protocol.

    Attributes:
        ydoc: The document (a `pycrdt.Doc` or a `y_py.YDoc`); edit it directly to
            make server-side changes.
    """

    def __init__(self, ydoc: Any = None) -> None:
        """Wrap `ydoc`, or a new pycrdt document when None.

        Raises:
            TypeError: `ydoc` is neither a `pycrdt.Doc` nor a `y_py.YDoc`.
        """
        self.ydoc: Any = ydoc if ydoc is not None else crdt.new_doc("pycrdt")
        crdt.client_id(self.ydoc)  # refuses other objects now rather than at the first client
        self._unobserve: Callable[[], None] | None = None

    def state_vector(self) -> bytes:
        """The document's state vector (the body of a sync step 1)."""
        return crdt.encode_state_vector(self.ydoc)

    def whole_state(self) -> bytes:
        """The document's whole state as one update."""
        return crdt.encode_state_as_update(self.ydoc)

    def diff(self, state_vector: bytes) -> bytes:
        """An update with everything the holder of `state_vector` lacks.

        Raises:
            ProtocolError: `state_vector` does not decode.
        """
        try:
            return crdt.encode_diff(self.ydoc, state_vector)
        except InvalidUpdateError as exc:
            raise ProtocolError(str(exc)) from exc

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
        self._unobserve = crdt.observe_updates(self.ydoc, callback)

    def unobserve(self) -> None:
        """Stop calling the observer set by `observe`."""
        if self._unobserve is not None:
            self._unobserve()
            self._unobserve = None

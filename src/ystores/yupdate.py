"""Reading the structure of a Yjs v1 update without applying it.

Yields which clients an update writes, over which clock ranges, and which ranges
it deletes. `inspect` shows these; compaction uses them to check that a merged
snapshot covers every update it replaces (a CRDT engine leaves out of its encoded
state any update whose dependencies it has not seen).

The layout follows Yjs' `readClientsStructRefs` and `readDeleteSet` (v1 encoding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .records import decode_varuint

__all__ = [
    "CoverageCheck",
    "Item",
    "UpdateStructure",
    "decode_state_vector",
    "parse_update",
    "update_items",
]

_STRING, _TYPE, _ANY, _DOC = 4, 7, 8, 9


@dataclass
class UpdateStructure:
    """What an update writes and deletes.

    Attributes:
        structs: Per client, the clock ranges `(start, end)` of the structs it carries.
        deletes: Per client, the clock ranges `(start, end)` it marks deleted.
    """

    structs: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    deletes: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the update changes nothing."""
        return not self.structs and not self.deletes


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        value, self.pos = decode_varuint(self.data, self.pos)
        return value

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def skip(self, count: int) -> None:
        if self.pos + count > len(self.data):
            raise IndexError("the update ends inside a field")
        self.pos += count

    def string(self) -> str:
        length = self.uint()
        start = self.pos
        self.skip(length)
        return self.data[start : self.pos].decode("utf-8")

    def skip_buffer(self) -> None:
        self.skip(self.uint())

    def skip_any(self) -> None:
        kind = self.byte()
        if kind in (127, 126, 121, 120):  # undefined, null, false, true
            return
        if kind == 125:  # varint: a var-uint with a sign bit, same byte structure
            self.uint()
        elif kind == 124:
            self.skip(4)
        elif kind in (123, 122):
            self.skip(8)
        elif kind == 119:
            self.skip_buffer()
        elif kind == 118:
            for _ in range(self.uint()):
                self.skip_buffer()
                self.skip_any()
        elif kind == 117:
            for _ in range(self.uint()):
                self.skip_any()
        elif kind == 116:
            self.skip_buffer()
        else:
            raise ValueError(f"unknown lib0 'any' type {kind}")


@dataclass(frozen=True, slots=True)
class Item:
    """One item (a run of content) of an update.

    Attributes:
        client: The client that wrote it.
        clock: Its first clock.
        length: How many clock units it covers.
        origin: The id `(client, clock)` it was inserted after, if any.
        right: The id it was inserted before, if any.
        parent: A root type's name, an item id (nested type), or None when the
            item has an origin or right neighbour (it shares theirs).
        keyed: Whether it is a map entry (it carries a key).
        content: The content type (4 string, 6 format, 7 type, 8 any...).
        type_ref: For a nested type, its kind (0 array, 1 map, 2 text, 3 XML element...).
    """

    client: int
    clock: int
    length: int
    origin: tuple[int, int] | None
    right: tuple[int, int] | None
    parent: str | tuple[int, int] | None
    keyed: bool
    content: int
    type_ref: int | None


def _content(reader: _Reader, ref: int) -> tuple[int, int | None]:
    """Skip an item's content; return its length in clock units and its type ref."""
    if ref in (1, 2, _ANY):  # deleted, JSON, any: a count, then the values
        count = reader.uint()
        if ref == 2:
            for _ in range(count):
                reader.skip_buffer()
        elif ref == _ANY:
            for _ in range(count):
                reader.skip_any()
        return count, None
    if ref == _STRING:
        return len(reader.string().encode("utf-16-le")) // 2, None
    if ref in (3, 5):  # binary, embed
        reader.skip_buffer()
    elif ref == 6:  # format: key, value
        reader.skip_buffer()
        reader.skip_buffer()
    elif ref == _TYPE:
        type_ref = reader.uint()
        if type_ref in (3, 5):  # XmlElement and XmlHook carry a name
            reader.skip_buffer()
        return 1, type_ref
    elif ref == _DOC:
        reader.skip_buffer()
        reader.skip_any()
    else:
        raise ValueError(f"unknown content type {ref}")
    return 1, None


def _read_struct(reader: _Reader, client: int, clock: int) -> Item | int:
    """The next struct: an `Item`, or the length of a GC or skip run."""
    info = reader.byte()
    ref = info & 0x1F
    if ref in (0, 10):  # GC, Skip
        return reader.uint()
    origin = (reader.uint(), reader.uint()) if info & 0x80 else None
    right = (reader.uint(), reader.uint()) if info & 0x40 else None
    parent: str | tuple[int, int] | None = None
    keyed = False
    if not info & 0xC0:
        parent = reader.string() if reader.uint() == 1 else (reader.uint(), reader.uint())
        if info & 0x20:
            reader.skip_buffer()  # the map key
            keyed = True
    length, type_ref = _content(reader, ref)
    return Item(client, clock, length, origin, right, parent, keyed, ref, type_ref)


def _walk(update: bytes, items: list[Item] | None) -> UpdateStructure:
    reader = _Reader(update)
    result = UpdateStructure()
    try:
        for _ in range(reader.uint()):
            count, client, clock = reader.uint(), reader.uint(), reader.uint()
            start = clock
            for _ in range(count):
                struct = _read_struct(reader, client, clock)
                if isinstance(struct, int):
                    clock += struct
                else:
                    clock += struct.length
                    if items is not None:
                        items.append(struct)
            if clock > start:
                result.structs.setdefault(client, []).append((start, clock))
        for _ in range(reader.uint()):
            client = reader.uint()
            ranges = result.deletes.setdefault(client, [])
            for _ in range(reader.uint()):
                begin = reader.uint()
                ranges.append((begin, begin + reader.uint()))
    except (IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a well-formed Yjs v1 update: {exc}") from exc
    if reader.pos != len(update):
        raise ValueError(f"{len(update) - reader.pos} bytes follow the end of the update")
    return result


def parse_update(update: bytes) -> UpdateStructure:
    """The clients and clock ranges a Yjs v1 update writes and deletes.

    Raises:
        ValueError: The bytes are not a well-formed Yjs v1 update.
    """
    return _walk(update, None)


def update_items(update: bytes) -> list[Item]:
    """Every item a Yjs v1 update carries, in order (GC and skip runs left out).

    Raises:
        ValueError: The bytes are not a well-formed Yjs v1 update.
    """
    items: list[Item] = []
    _walk(update, items)
    return items


def decode_state_vector(state: bytes) -> dict[int, int]:
    """A Yjs state vector (`{client: next clock}`) from its v1 encoding."""
    reader = _Reader(state)
    return {reader.uint(): reader.uint() for _ in range(reader.uint())}


class CoverageCheck:
    """Checks cheaply that a document integrated every update applied to it.

    A CRDT engine holds back an update whose dependencies it has not seen, and
    leaves it out of the state it encodes. Feed every update to `add`; afterwards
    `missing(state_vector)` says whether some update may not be in the document.
    Most updates cost a header read: one client block and an empty delete set (a
    delete set that is not empty never ends in a zero byte, its last number being
    a length of at least 1). Others are parsed in full.
    """

    def __init__(self) -> None:
        self.max_start: dict[int, int] = {}
        self.max_delete_end: dict[int, int] = {}

    def add(self, update: bytes) -> None:
        """Account for one update (raises ValueError if it is malformed)."""
        if update[-1:] == b"\x00" and update[:1] == b"\x01":
            # the header: 1 client block, its struct count, client id and first clock
            pos = 1
            if update[pos] < 0x80:  # one-byte struct count (nearly always)
                pos += 1
            else:
                pos = decode_varuint(update, pos)[1]
            client, pos = decode_varuint(update, pos)
            clock = update[pos]
            if clock >= 0x80:
                clock = decode_varuint(update, pos)[0]
            if self.max_start.get(client, -1) < clock:
                self.max_start[client] = clock
            return
        structure = parse_update(update)
        for client, ranges in structure.structs.items():
            start = max(begin for begin, _ in ranges)
            if self.max_start.get(client, -1) < start:
                self.max_start[client] = start
        for client, ranges in structure.deletes.items():
            end = max(stop for _, stop in ranges)
            if self.max_delete_end.get(client, 0) < end:
                self.max_delete_end[client] = end

    def missing(self, state_vector: dict[int, int]) -> bool:
        """Whether an update added may be missing from a document with this state."""
        return any(
            state_vector.get(client, 0) <= start for client, start in self.max_start.items()
        ) or any(state_vector.get(client, 0) < end for client, end in self.max_delete_end.items())

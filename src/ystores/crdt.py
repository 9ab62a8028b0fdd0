"""The one place that touches a CRDT engine: y-py or pycrdt.

A document handed to ystores may be a `y_py.YDoc` or a `pycrdt.Doc`; functions
here dispatch on its type, so the rest of the package never imports an engine.
y-py is the default engine where it installs (it has no wheels for Python 3.13
and later); pycrdt is used everywhere else and always for decoding checks.

The engines are untrusted code: some malformed updates make them panic (pycrdt
raises `pyo3_runtime.PanicException`, a `BaseException`, not an `Exception`).
Every call into an engine goes through `engine_call`, so whatever an engine
raises reaches the rest of ystores as `InvalidUpdateError`. A poisoned update is
stopped at three places (see the Failure modes page of the docs):

- at write: `validate_update` decodes the update and applies it to a scratch
  document (about 2.5 µs of CPU for a keystroke, 1 ms for a 90 kB update), so an update
  that makes the engine fail on its own is never stored;
- in a room: a client's update is applied to the room's document before it is
  stored, so an update that fails only against the document's content (these
  exist) is refused there too;
- at load: a stored update that fails is reported with its position, and the
  failure stays confined to that one document.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal, TypeVar

import pycrdt

from .errors import InvalidUpdateError
from .yupdate import CoverageCheck, UpdateStructure, decode_state_vector, parse_update

__all__ = [
    "EMPTY_UPDATE",
    "Engine",
    "Replay",
    "apply_update",
    "apply_updates",
    "client_id",
    "default_engine",
    "encode_diff",
    "encode_state_as_update",
    "encode_state_vector",
    "engine_call",
    "engine_failure",
    "merge_updates",
    "new_doc",
    "observe_updates",
    "quiet_engine_panics",
    "validate_update",
]

Engine = Literal["y-py", "pycrdt"]
T = TypeVar("T")

EMPTY_UPDATE = b"\x00\x00"
"""A Yjs v1 update that changes nothing (no structs, empty delete set)."""


def engine_failure(exc: BaseException) -> bool:
    """Whether `exc` is an engine failing (an exception or a Rust panic), not an interrupt.

    A panic crossing from Rust is `pyo3_runtime.PanicException`, a `BaseException`;
    `KeyboardInterrupt`, `SystemExit` and cancellation are never engine failures.
    """
    if isinstance(exc, Exception):
        return True
    return type(exc).__name__ == "PanicException" and type(exc).__module__ == "pyo3_runtime"


_quiet: tuple[int, int] | None = None  # (saved stderr, /dev/null) while panics are quiet


def quiet_engine_panics() -> None:
    """Keep the engine's own panic report (and Rust backtrace) off standard error.

    Rust prints a panic's message, and a backtrace when `RUST_BACKTRACE` is set,
    straight to file descriptor 2 before ystores turns the panic into an error.
    The `ystore` command calls this so a poisoned record gives one line of
    error, not pages of backtrace. From then on, engine calls made on the main
    thread point descriptor 2 at /dev/null for their duration (two `dup2`
    calls, about a microsecond); calls from other threads are left alone.
    """
    global _quiet
    if _quiet is None:
        _quiet = (os.dup(2), os.open(os.devnull, os.O_WRONLY))


@contextmanager
def _silenced() -> Iterator[None]:
    quiet = _quiet
    if quiet is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    sys.stderr.flush()
    os.dup2(quiet[1], 2)
    try:
        yield
    finally:
        os.dup2(quiet[0], 2)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not isinstance(exc, Exception):
        text = f"the CRDT engine panicked: {text}"
    return text.rstrip(".")


@contextmanager
def engine_call(message: str) -> Iterator[None]:
    """Turn whatever an engine raises inside the block into `InvalidUpdateError`.

    The error's text is `message`, a colon and the engine's one-line reason.
    `TypeError` (a document of no supported engine) and `InvalidUpdateError`
    pass through unchanged.

    Raises:
        InvalidUpdateError: The engine raised or panicked.
    """
    try:
        with _silenced():
            yield
    except (TypeError, InvalidUpdateError):
        raise
    except BaseException as exc:
        if not engine_failure(exc):
            raise
        raise InvalidUpdateError(f"{message}: {_describe(exc)}.") from exc


def _call(message: str, function: Callable[[], T]) -> T:
    with engine_call(message):
        return function()


def _y_py() -> Any:
    import y_py

    return y_py


def default_engine() -> Engine:
    """y-py where it is installed, pycrdt otherwise."""
    return "y-py" if importlib.util.find_spec("y_py") is not None else "pycrdt"


def new_doc(engine: Engine | None = None) -> Any:
    """A new empty document of the given engine (the default engine when None)."""
    engine = engine or default_engine()
    if engine == "pycrdt":
        return pycrdt.Doc()
    if engine == "y-py":
        return _y_py().YDoc()
    raise ValueError(f"Unknown CRDT engine {engine!r}; use 'y-py' or 'pycrdt'.")


def _is_y_py_doc(doc: object) -> bool:
    y_py = sys.modules.get("y_py")  # a y-py document exists only once y_py is imported
    return y_py is not None and isinstance(doc, y_py.YDoc)


def _unsupported(doc: object) -> TypeError:
    kind = f"{type(doc).__module__}.{type(doc).__qualname__}"
    return TypeError(f"Expected a y_py.YDoc or a pycrdt.Doc, got {kind}.")


def apply_update(doc: object, update: bytes) -> None:
    """Apply one Yjs v1 update to a y-py or pycrdt document.

    Raises:
        InvalidUpdateError: The engine could not apply the update (or panicked).
        TypeError: `doc` is not a document of a supported engine.
    """
    with engine_call("An update could not be applied"):
        if isinstance(doc, pycrdt.Doc):
            doc.apply_update(update)
        elif _is_y_py_doc(doc):
            _y_py().apply_update(doc, update)
        else:
            raise _unsupported(doc)


def apply_updates(doc: object, updates: Iterable[bytes]) -> None:
    """Apply updates, in order, to a y-py or pycrdt document in one transaction.

    One transaction for many updates costs less than one each: for 50,000
    keystrokes, 121 ms against 176 ms here with pycrdt. Observers see one
    transaction. (Merging runs of updates first was faster still, 97 ms, but the
    engines' merge loses structs when a client's updates come out of order, so
    it is not done.)

    Raises:
        InvalidUpdateError: An update could not be applied (those before it were);
            its message gives the update's position in `updates` (from 1).
        TypeError: `doc` is not a document of a supported engine.
    """
    if isinstance(doc, pycrdt.Doc):
        transaction: Any = _call("A transaction could not start", doc.transaction)
        apply: Callable[[bytes], None] | None = _pycrdt_apply(doc, transaction)
    elif _is_y_py_doc(doc):
        transaction = _call("A transaction could not start", doc.begin_transaction)  # type: ignore[attr-defined]
        apply = transaction.apply_v1
    else:
        raise _unsupported(doc)
    position = 0
    try:
        with _silenced(), transaction:
            if apply is None:  # pycrdt, once the transaction is open: its bare apply
                apply = _bare_apply(doc, transaction)
            for update in updates:
                position += 1
                apply(update)
    except BaseException as exc:
        if not engine_failure(exc) or isinstance(exc, InvalidUpdateError):
            raise
        raise InvalidUpdateError(
            f"Stored update #{position} of this batch could not be applied: {_describe(exc)}."
        ) from exc


def _pycrdt_apply(doc: Any, transaction: Any) -> Callable[[bytes], None] | None:
    """`doc.apply_update`, or None where the bare apply can be taken once the transaction opens.

    pycrdt's `Doc.apply_update` re-enters the open transaction and checks it for
    each update (about 1.5 µs each, more than applying a keystroke); inside the
    transaction `apply_updates` opens, the engine document's own apply does the
    same work. A typed document (`Model`) and other layouts of pycrdt keep the
    public method.
    """
    bare = getattr(doc, "_doc", None)
    if getattr(doc, "_Model", None) is not None or bare is None:
        return doc.apply_update  # type: ignore[no-any-return]
    if not hasattr(transaction, "_txn") or not hasattr(bare, "apply_update"):
        return doc.apply_update  # type: ignore[no-any-return]
    return None


def _bare_apply(doc: Any, transaction: Any) -> Callable[[bytes], None]:
    """The engine document's apply bound to the open transaction (see `_pycrdt_apply`)."""
    engine_transaction = transaction._txn
    if engine_transaction is None or isinstance(transaction, _ReadTransaction):
        return doc.apply_update  # type: ignore[no-any-return]  # it raises what pycrdt raises
    return partial(doc._doc.apply_update, engine_transaction)


def encode_state_as_update(doc: object) -> bytes:
    """The whole state of a y-py or pycrdt document as one Yjs v1 update.

    Raises:
        InvalidUpdateError: The engine failed to encode the document.
        TypeError: `doc` is not a document of a supported engine.
    """
    with engine_call("The document's state could not be encoded"):
        if isinstance(doc, pycrdt.Doc):
            return doc.get_update()
        if _is_y_py_doc(doc):
            return bytes(_y_py().encode_state_as_update(doc))
        raise _unsupported(doc)


def validate_update(update: bytes) -> None:
    """Check that `update` decodes as a Yjs v1 update and applies to an empty document.

    Applying to a scratch document catches the updates that make the engine fail
    or panic on their own. The scratch document is the engine's own, without
    pycrdt's Python wrapper (its locks and transaction objects cost five times
    the apply): about 2.5 µs of CPU for a keystroke here (decoding alone, 0.3 µs)
    and 1 ms for a 90 kB update. An update that fails only against some
    document's content is caught where it meets that content (the room's
    document, or the load).

    Raises:
        InvalidUpdateError: It does not decode, or the engine fails on it.
    """
    if not isinstance(update, bytes | bytearray | memoryview):
        raise InvalidUpdateError(f"An update must be bytes, not {type(update).__name__}.")
    data = update if type(update) is bytes else bytes(update)
    if _quiet is None:  # the common case: no descriptor juggling, no context managers
        try:
            pycrdt.get_state(data)
            _scratch_apply(data)
        except BaseException as exc:
            if not engine_failure(exc):
                raise
            raise InvalidUpdateError(_not_an_update(data, exc)) from exc
        return
    with engine_call(f"These {len(data)} bytes are not a Yjs v1 update; nothing was written"):
        pycrdt.get_state(data)
        _scratch_apply(data)


def _not_an_update(data: bytes, exc: BaseException) -> str:
    return (
        f"These {len(data)} bytes are not a Yjs v1 update; nothing was written: {_describe(exc)}."
    )


def _bare_scratch_apply(data: bytes) -> None:
    """Apply `data` to a new engine document and commit, as `pycrdt.Doc.apply_update` does."""
    doc = _BareDoc(None, None, None)
    transaction = doc.create_transaction()
    try:
        doc.apply_update(transaction, data)
        transaction.commit()
    finally:
        transaction.drop()


def _wrapped_scratch_apply(data: bytes) -> None:
    pycrdt.Doc().apply_update(data)


def _pick_scratch_apply() -> Callable[[bytes], None]:
    """The bare engine document where this pycrdt has the binding it was written for."""
    try:
        _bare_scratch_apply(EMPTY_UPDATE)
    except Exception:
        return _wrapped_scratch_apply
    return _bare_scratch_apply


try:
    from pycrdt._transaction import ReadTransaction as _ReadTransaction
except ImportError:  # another layout of pycrdt: no bare apply is taken anyway

    class _ReadTransaction:  # type: ignore[no-redef]
        """Stands in for pycrdt's read-only transaction class where it is elsewhere."""


_scratch_apply: Callable[[bytes], None]
try:
    from pycrdt._pycrdt import Doc as _BareDoc
except ImportError:  # another layout of pycrdt: its public document, slower
    _scratch_apply = _wrapped_scratch_apply
else:
    _scratch_apply = _pick_scratch_apply()


def merge_updates(updates: Iterable[bytes]) -> bytes:
    """Merge updates into one update that has the same effect as applying them all.

    The updates are replayed into a document in one transaction and its state is
    encoded: for 50,000 keystrokes that took 0.15 s here, where the engines'
    merge function (superlinear in the number of updates) took 22 s. An engine
    leaves out of its encoded state any update whose dependencies it has not
    seen; when a cheap check (`CoverageCheck`) says that may have happened, the
    updates held back are found and merged in explicitly, so nothing is lost.
    Streams: `updates` may be a generator over a long log.

    Raises:
        InvalidUpdateError: An update does not decode.
    """
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    check = CoverageCheck()
    applied: list[bytes] = []
    try:
        with _silenced(), doc.transaction():
            for update in updates:
                check.add(update)
                doc.apply_update(update)
                applied.append(update)
    except BaseException as exc:
        if not engine_failure(exc):
            raise
        raise InvalidUpdateError(
            f"Update #{len(applied) + 1} could not be merged: {_describe(exc)}."
        ) from exc
    if not applied:
        return EMPTY_UPDATE
    with engine_call("The merged updates could not be encoded"):
        state = doc.get_update()
        state_vector = decode_state_vector(doc.get_state())
        if not check.missing(state_vector):
            return state
        held_back = [u for u in applied if _not_integrated(parse_update(u), state_vector)]
        return pycrdt.merge_updates(state, *held_back)


class Replay:
    """Updates applied one at a time to a pycrdt document, to find any the engine rejects.

    `verify` replays each document this way: an update that decodes alone but
    makes the engine fail against the content before it (a poisoned record) is
    found, and the replay goes on without it.

    Attributes:
        failures: How many updates failed.
    """

    def __init__(self) -> None:
        self._doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self.failures = 0

    def apply(self, update: bytes) -> str | None:
        """Apply `update`; return why it failed (one line), or None when it applied."""
        try:
            apply_update(self._doc, update)
        except InvalidUpdateError as exc:
            self.failures += 1
            return str(exc)
        return None


def _not_integrated(structure: UpdateStructure, state_vector: dict[int, int]) -> bool:
    return any(
        end > state_vector.get(client, 0)
        for ranges in (structure.structs, structure.deletes)
        for client, spans in ranges.items()
        for _, end in spans
    )


def encode_state_vector(doc: object) -> bytes:
    """The state vector of a y-py or pycrdt document (what it has seen of each client).

    Raises:
        InvalidUpdateError: The engine failed (or panicked).
        TypeError: `doc` is not a document of a supported engine.
    """
    if isinstance(doc, pycrdt.Doc):
        return _call("The engine could not encode a state vector", doc.get_state)
    if _is_y_py_doc(doc):
        with engine_call("The engine could not encode a state vector"):
            return bytes(_y_py().encode_state_vector(doc))
    raise _unsupported(doc)


def encode_diff(doc: object, state_vector: bytes) -> bytes:
    """An update with everything in `doc` that the holder of `state_vector` lacks.

    Raises:
        InvalidUpdateError: `state_vector` does not decode (or the engine panicked).
        TypeError: `doc` is not a document of a supported engine.
    """
    message = f"A state vector of {len(state_vector)} bytes does not decode"
    if isinstance(doc, pycrdt.Doc):
        return _call(message, lambda: doc.get_update(state_vector))
    if _is_y_py_doc(doc):
        with engine_call(message):
            return bytes(_y_py().encode_state_as_update(doc, state_vector))
    raise _unsupported(doc)


def client_id(doc: object) -> int:
    """The Yjs client id a y-py or pycrdt document writes its own changes under.

    Raises:
        TypeError: `doc` is not a document of a supported engine.
    """
    if isinstance(doc, pycrdt.Doc):
        return int(doc.client_id)
    if _is_y_py_doc(doc):
        return int(doc.client_id)  # type: ignore[attr-defined]
    raise _unsupported(doc)


def observe_updates(doc: object, callback: Callable[[bytes], None]) -> Callable[[], None]:
    """Call `callback` with the update of each transaction that changes `doc`.

    Transactions that change nothing are not reported (y-py reports them as an
    empty update; pycrdt does not). The callback runs synchronously at the end of
    each transaction.

    Returns:
        A function that stops the calls. y-py cannot drop an observer, so for a
        y-py document the observer stays registered but calls nothing more.

    Raises:
        TypeError: `doc` is not a document of a supported engine.
    """
    if isinstance(doc, pycrdt.Doc):
        subscription = doc.observe(lambda event: callback(event.update))
        return lambda: doc.unobserve(subscription)
    if _is_y_py_doc(doc):
        active = [True]

        def after_transaction(event: Any) -> None:
            update = bytes(event.get_update())
            if active[0] and update != EMPTY_UPDATE:
                callback(update)

        doc.observe_after_transaction(after_transaction)  # type: ignore[attr-defined]
        return lambda: active.__setitem__(0, False)
    raise _unsupported(doc)

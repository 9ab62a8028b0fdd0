"""Edit scripts between two sequences (strings, or lists of item fingerprints).

After the common prefix and suffix are set aside, a string is diffed word by
word (difflib, fast on words that rarely repeat), then each changed run of words
character by character with Myers' O((N+M)D) algorithm; other sequences with
Myers directly. Past `MAX_EDITS` differences a run falls back to difflib (a
list) or is replaced whole: still correct, bounded in time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

__all__ = ["MAX_EDITS", "Opcode", "opcodes"]

MAX_EDITS = 300
"""The most insertions plus deletions Myers' search looks for before giving up."""

Opcode = tuple[str, int, int, int, int]
"""`(tag, i1, i2, j1, j2)` as difflib gives them: `now[i1:i2]` becomes `old[j1:j2]`."""


def opcodes(now: Sequence[Any], old: Sequence[Any]) -> list[Opcode]:
    """Edit operations turning `now` into `old` (tags `equal`, `replace`, `delete`, `insert`)."""
    start = 0
    limit = min(len(now), len(old))
    while start < limit and now[start] == old[start]:
        start += 1
    end = 0
    while end < limit - start and now[len(now) - 1 - end] == old[len(old) - 1 - end]:
        end += 1
    a, b = now[start : len(now) - end], old[start : len(old) - end]
    if isinstance(a, str) and isinstance(b, str) and a and b:
        found = _by_words(a, b)
    else:
        found = (_myers(a, b, MAX_EDITS) if a and b else None) or _fallback(a, b)
    return [(tag, i1 + start, i2 + start, j1 + start, j2 + start) for tag, i1, i2, j1, j2 in found]


def _fallback(a: Sequence[Any], b: Sequence[Any]) -> list[Opcode]:
    if not a and not b:
        return []
    if a and b and not isinstance(a, str):
        matcher = SequenceMatcher(None, a, b, autojunk=False)
        return [(tag, i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes()]
    tag = "replace" if a and b else ("delete" if a else "insert")
    return [(tag, 0, len(a), 0, len(b))]


_WORD = re.compile(r"\S+\s*|\s+")


def _by_words(a: str, b: str) -> list[Opcode]:
    """Words first, then the characters of each changed run of words."""
    words_a, words_b = _WORD.findall(a), _WORD.findall(b)
    at_a, at_b = _starts(words_a), _starts(words_b)
    result: list[Opcode] = []
    matcher = SequenceMatcher(None, words_a, words_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        x1, x2, y1, y2 = at_a[i1], at_a[i2], at_b[j1], at_b[j2]
        if tag != "replace":
            result.append((tag, x1, x2, y1, y2))
            continue
        inner = _myers(a[x1:x2], b[y1:y2], MAX_EDITS) or _fallback(a[x1:x2], b[y1:y2])
        result += [(t, p1 + x1, p2 + x1, q1 + y1, q2 + y1) for t, p1, p2, q1, q2 in inner]
    return result


def _starts(lines: list[str]) -> list[int]:
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return starts


def _myers(a: Sequence[Any], b: Sequence[Any], max_edits: int) -> list[Opcode] | None:
    """The shortest edit script, or None when it is longer than `max_edits`."""
    n, m = len(a), len(b)
    v: dict[int, int] = {1: 0}
    trace: list[dict[int, int]] = []
    for d in range(min(n + m, max_edits) + 1):
        trace.append(dict(v))
        for k in range(-d, d + 1, 2):
            x = v[k + 1] if k == -d or (k != d and v[k - 1] < v[k + 1]) else v[k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x, y = x + 1, y + 1
            v[k] = x
            if x >= n and y >= m:
                return _script(trace, n, m)
    return None


def _script(trace: list[dict[int, int]], n: int, m: int) -> list[Opcode]:
    """Walk the search back from the end into runs of equal and edited items."""
    moves: list[tuple[str, int, int]] = []  # (kind, x, y) before the move, in reverse
    x, y = n, m
    for d in range(len(trace) - 1, -1, -1):
        v = trace[d]
        k = x - y
        down = k == -d or (k != d and v.get(k - 1, -1) < v.get(k + 1, -1))
        prev_k = k + 1 if down else k - 1
        prev_x = v.get(prev_k, 0)
        prev_y = prev_x - prev_k
        while x > prev_x and y > prev_y:
            x, y = x - 1, y - 1
            moves.append(("equal", x, y))
        if d > 0:
            moves.append(("insert" if down else "delete", prev_x, prev_y))
        x, y = prev_x, prev_y
    moves.reverse()
    return _grouped(moves, n, m)


def _grouped(moves: list[tuple[str, int, int]], n: int, m: int) -> list[Opcode]:
    result: list[Opcode] = []
    i = j = 0
    index = 0
    while index < len(moves):
        kind = moves[index][0]
        if kind == "equal":
            i0, j0 = i, j
            while index < len(moves) and moves[index][0] == "equal":
                i, j, index = i + 1, j + 1, index + 1
            result.append(("equal", i0, i, j0, j))
            continue
        i0, j0 = i, j
        while index < len(moves) and moves[index][0] != "equal":
            if moves[index][0] == "delete":
                i += 1
            else:
                j += 1
            index += 1
        tag = "replace" if i > i0 and j > j0 else ("delete" if i > i0 else "insert")
        result.append((tag, i0, i, j0, j))
    assert (i, j) == (n, m), "an edit script must cover both sequences"
    return result

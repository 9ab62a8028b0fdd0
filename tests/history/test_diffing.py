"""Edit scripts: applied to the current sequence, they give the old one, and stay small."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ystores.history.diffing import opcodes


def applied(now: Sequence[Any], old: Sequence[Any]) -> list[Any]:
    result = list(now)
    for tag, i1, i2, j1, j2 in reversed(opcodes(now, old)):
        if tag != "equal":
            result[i1:i2] = list(old[j1:j2])
    return result


@settings(max_examples=300, deadline=None)
@given(now=st.text(alphabet="ab \né😀", max_size=60), old=st.text(alphabet="ab \né😀", max_size=60))
def test_strings(now: str, old: str) -> None:
    assert "".join(applied(now, old)) == old


@settings(max_examples=300, deadline=None)
@given(now=st.lists(st.integers(0, 4), max_size=40), old=st.lists(st.integers(0, 4), max_size=40))
def test_lists(now: list[int], old: list[int]) -> None:
    assert applied(now, old) == old


def test_a_few_edits_in_a_long_text_are_a_few_operations() -> None:
    old = " ".join(f"word{i}" for i in range(3000))
    now = old.replace("word100 ", "changed ").replace("word2000", "word2000 inserted")
    changed = [op for op in opcodes(now, old) if op[0] != "equal"]
    assert 1 <= len(changed) <= 4
    assert sum(max(i2 - i1, j2 - j1) for _tag, i1, i2, j1, j2 in changed) < 30

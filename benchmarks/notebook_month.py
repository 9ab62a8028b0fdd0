"""A month of notebook editing, as timestamped Yjs updates (the store-size workload).

A few notebooks shaped like Jupyter's documents (a root map "meta" and a root
array "cells" of maps holding a "source" text, "outputs" and an execution count)
are edited over `days` days. On most working days each notebook gets one to
three sessions, started during office hours; each session is a new client (a
new browser tab: a new Yjs client id), types into cells one keystroke per
update at a person's pace (with short pauses), now and then runs a cell (its
outputs are replaced by a stream output, the larger and compressible updates),
adds a cell or deletes a few characters. Between sessions the notebook is idle
for hours or days.

The same seed always gives the same bytes and the same timestamps.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any

import pycrdt

DAY = 86400.0
START = 1_767_225_600.0  # 2026-01-01 00:00 UTC
_WORDS = [
    "import",
    "numpy",
    "as",
    "np",
    "df",
    "=",
    "pd.read_csv(path)",
    "for",
    "in",
    "range(10):",
    "print(x)",
    "plt.plot(t,",
    "y)",
    "return",
    "def",
    "model.fit(X,",
    "# clean up",
]


@dataclass(frozen=True)
class Edit:
    """One update written to one notebook at one time."""

    timestamp: float
    doc: str
    update: bytes


@dataclass(frozen=True)
class MonthSize:
    """How big the simulated month is.

    Attributes:
        docs: Notebooks edited.
        days: Days simulated.
        keys: Least and most keystrokes in a session.
    """

    docs: int
    days: int
    keys: tuple[int, int]


def _new_cell(index: int) -> pycrdt.Map[Any]:
    return pycrdt.Map(
        {
            "id": f"cell-{index:04d}",
            "cell_type": "code",
            "source": pycrdt.Text(),
            "metadata": pycrdt.Map(),
            "outputs": pycrdt.Array(),
            "execution_count": None,
        }
    )


class _Notebook:
    """One notebook's replica, handed from session to session (each a new client)."""

    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self.rng = rng
        self.state = b""
        self.cells_made = 0

    def session(self, start: float, keys: int, client_id: int) -> list[Edit]:
        rng = self.rng
        doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=client_id)
        if self.state:
            doc.apply_update(self.state)
        edits: list[Edit] = []
        clock = start
        doc.observe(lambda event: edits.append(Edit(clock, self.name, event.update)))
        cells = doc.get("cells", type=pycrdt.Array)
        meta = doc.get("meta", type=pycrdt.Map)
        if "nbformat" not in meta:
            meta["nbformat"] = 4
            meta["metadata"] = pycrdt.Map({"kernelspec": {"name": "python3"}})
        if len(cells) == 0:
            cells.append(_new_cell(self.cells_made))
            self.cells_made += 1
        cell = cells[rng.randrange(len(cells))]
        typed = ""
        for _ in range(keys):
            clock += rng.uniform(0.12, 0.5) if rng.random() > 0.03 else rng.uniform(5, 90)
            source: pycrdt.Text = cell["source"]
            roll = rng.random()
            if roll < 0.015:
                cells.insert(rng.randrange(len(cells) + 1), _new_cell(self.cells_made))
                self.cells_made += 1
                cell = cells[rng.randrange(len(cells))]
            elif roll < 0.035:
                cell = cells[rng.randrange(len(cells))]
            elif roll < 0.06 and len(source) > 5:
                at = rng.randrange(len(source) - 3)
                del source[at : at + rng.randint(1, 3)]
            elif roll < 0.075:
                self._run(doc, cell, rng)
            else:
                if not typed:
                    typed = rng.choice(_WORDS) + (" " if rng.random() < 0.8 else "\n")
                source.insert(len(source), typed[0])
                typed = typed[1:]
        self.state = doc.get_update()
        return edits

    @staticmethod
    def _run(doc: pycrdt.Doc[Any], cell: pycrdt.Map[Any], rng: random.Random) -> None:
        lines = [
            f"{rng.choice(_WORDS)} {rng.random():.6f} {rng.randint(0, 10**6)}"
            for _ in range(rng.randint(1, 60))
        ]
        with doc.transaction():
            outputs: pycrdt.Array[Any] = cell["outputs"]
            outputs.clear()
            outputs.append(
                pycrdt.Map({"output_type": "stream", "name": "stdout", "text": "\n".join(lines)})
            )
            cell["execution_count"] = (cell["execution_count"] or 0) + 1


def notebook_month(size: MonthSize, seed: int = 11) -> list[Edit]:
    """Every edit of the month, in time order (notebooks interleave)."""
    rng = random.Random(seed)
    notebooks = [_Notebook(f"notebooks/{name}.ipynb", rng) for name in _names(size.docs, rng)]
    edits: list[Edit] = []
    client = 1000
    for day in range(size.days):
        weekend = day % 7 in (5, 6)
        for notebook in notebooks:
            if rng.random() > (0.15 if weekend else 0.7):
                continue
            starts = sorted(rng.uniform(8, 18) * 3600 for _ in range(rng.randint(1, 3)))
            free = 0.0  # sessions of one notebook follow each other, an idle gap between
            for start in starts:
                client += 1
                begin = max(START + day * DAY + start, free + rng.uniform(600, 3600))
                session = notebook.session(begin, rng.randint(*size.keys), client)
                free = session[-1].timestamp if session else begin
                edits += session
    edits.sort(key=lambda edit: edit.timestamp)
    return edits


def _names(count: int, rng: random.Random) -> list[str]:
    return ["".join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(count)]


def final_contents(edits: list[Edit]) -> dict[str, dict[str, Any]]:
    """Each notebook's content after every edit (to check stores read back all of it)."""
    docs: dict[str, pycrdt.Doc[Any]] = {}
    for edit in edits:
        docs.setdefault(edit.doc, pycrdt.Doc()).apply_update(edit.update)
    return {name: notebook_content(doc) for name, doc in docs.items()}


def notebook_content(doc: pycrdt.Doc[Any]) -> dict[str, Any]:
    """A notebook's roots as plain values."""
    return {
        "cells": doc.get("cells", type=pycrdt.Array).to_py(),
        "meta": doc.get("meta", type=pycrdt.Map).to_py(),
    }

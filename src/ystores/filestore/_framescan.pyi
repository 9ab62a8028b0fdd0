from typing import Any

def scan_raw(
    buf: bytes, i: int, last_seq: int, out: list[Any], seqs: list[int] | None, triples: bool, /
) -> tuple[int, int]: ...

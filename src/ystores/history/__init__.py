"""Document history: checkpoints, retention, compression and time travel.

The pieces every backend shares live here; the backends store and find records.

- `checkpoints`: a checkpoint record's header (what it covers, its digest) and
  how a checkpoint is built and trusted.
- `compression`: the per-record codec (raw or zlib).
- `policy`: when checkpoints are written and how much history is kept.
"""

from __future__ import annotations

from .checkpoints import (
    CheckpointHeader,
    CheckpointReport,
    decode_header,
    encode_header,
    update_digest,
)
from .compression import Codec, compress, decompress
from .policy import CheckpointPolicy, RetentionPolicy

__all__ = [
    "CheckpointHeader",
    "CheckpointPolicy",
    "CheckpointReport",
    "Codec",
    "RetentionPolicy",
    "compress",
    "decode_header",
    "decompress",
    "encode_header",
    "update_digest",
]

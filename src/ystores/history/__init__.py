"""Document history: checkpoints, retention, compression and time travel.

The pieces every backend shares live here; the backends store and find records.

- `checkpoints`: a checkpoint record's header (what it covers, its digest) and
  how a checkpoint is built and trusted.
- `compression`: the per-record codec (raw or zlib).
- `policy`: when checkpoints are written and how much history is kept.
- `packing`: blocks of old records packed and compressed together.
- `thinning`: which old checkpoints are kept.
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
from .packing import PackReport
from .policy import CheckpointPolicy, RetentionPolicy
from .thinning import ThinningPolicy

__all__ = [
    "CheckpointHeader",
    "CheckpointPolicy",
    "CheckpointReport",
    "Codec",
    "PackReport",
    "RetentionPolicy",
    "ThinningPolicy",
    "compress",
    "decode_header",
    "decompress",
    "encode_header",
    "update_digest",
]

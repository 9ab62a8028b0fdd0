"""Django Channels: `YjsConsumer` and `send_doc_update`, as in ypy-websocket.

Needs the `django` extra (`pip install 'ystores[django]'`, for `channels`).
"""

from __future__ import annotations

from ..extras import require

require("django", "The Django Channels consumer")  # a clear error naming the extra

from .consumer import YjsConsumer  # noqa: E402
from .updates import asend_doc_update, edit_document, group_name, send_doc_update  # noqa: E402

__all__ = ["YjsConsumer", "asend_doc_update", "edit_document", "group_name", "send_doc_update"]

"""Django Channels: `YjsConsumer` and `send_doc_update`, as in ypy-websocket.

Needs the `django` extra (`pip install 'ystores[django]'`, for `channels`).
"""

from __future__ import annotations

from .consumer import YjsConsumer
from .updates import asend_doc_update, edit_document, group_name, send_doc_update

__all__ = ["YjsConsumer", "asend_doc_update", "edit_document", "group_name", "send_doc_update"]

"""The HTTP side: synchronous views that edit live documents."""

from __future__ import annotations

import pycrdt
from django.http import HttpRequest, HttpResponse
from django.urls import path

from ystores.django import edit_document, send_doc_update


def append(request: HttpRequest, room: str) -> HttpResponse:
    """Add a line at the end of the room's text: clients see it, the store keeps it."""
    with edit_document(room) as doc:
        text = doc.get("text", type=pycrdt.Text)
        text += request.GET["line"] + "\n"
    return HttpResponse("sent\n")


def banner(request: HttpRequest, room: str) -> HttpResponse:
    """Send a ready-made update (here: made in a fresh document) with `send_doc_update`."""
    change: pycrdt.Doc = pycrdt.Doc()
    change.get("banner", type=pycrdt.Text).insert(0, request.GET["line"])
    send_doc_update(room, change.get_update())
    return HttpResponse("sent\n")


urlpatterns = [path("append/<path:room>", append), path("banner/<path:room>", banner)]

"""The ASGI application: Django for HTTP, the Yjs consumer for websockets.

Run it with `uvicorn asgi:application` or `daphne asgi:application` from this directory.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import re_path

django_application = get_asgi_application()

from consumers import DocConsumer  # noqa: E402 (after Django is set up)

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter([re_path(r"^ws/(?P<room>.+)$", DocConsumer.as_asgi())]),
    }
)

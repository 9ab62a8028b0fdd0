"""Settings of a minimal Django project serving Yjs rooms with `ystores.django.YjsConsumer`."""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
ROOT_URLCONF = "urls"
USE_TZ = True

# One channel layer joins every consumer of a room. The in-memory layer serves one
# process; behind several processes use a shared layer such as channels_redis.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Where the rooms' documents are stored: any ystores store URL.
YSTORES_URL = os.environ.get("YSTORES_URL", "sqlite:///ystore.db")

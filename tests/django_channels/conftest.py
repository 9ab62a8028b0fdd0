from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def django_settings() -> None:
    """Django configured once for the process: an in-memory channel layer, no store by default."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="tests-only",
            INSTALLED_APPS=["channels"],
            CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
            USE_TZ=True,
        )
        django.setup()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Channels runs on asyncio only

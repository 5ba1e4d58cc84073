"""Fixtures of the deployment tests: the engine (required in CI), the images built once."""

from __future__ import annotations

import pytest

from tests.docker.engine import APP_IMAGE, build_app_image, ensure_standins, require_engine


@pytest.fixture(scope="session")
def app_image() -> str:
    """The production Dockerfile built on the Python stand-in, once per session (the engine
    caches its layers, so an unchanged tree builds in seconds)."""
    require_engine()
    ensure_standins()
    build_app_image(APP_IMAGE)
    return APP_IMAGE

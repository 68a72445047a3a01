"""uvicorn factory for the live-server scan tests: the real app, configured from the
environment like `api.app:app_from_env`, with its gate clock fixed at SCAN_TEST_NOW (an ISO
time with an offset), since the tickets are for June 2027."""

from __future__ import annotations

import os
from datetime import datetime

from starlette.applications import Starlette

from api.app import create_app


def app_from_env() -> Starlette:
    now = datetime.fromisoformat(os.environ["SCAN_TEST_NOW"])
    assert now.tzinfo is not None
    return create_app(clock=lambda: now)

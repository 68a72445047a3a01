"""The published API schema (api/openapi.yaml; tests/test_openapi_document.py checks the
document itself): served at /api/openapi.json, and a live `amphi serve` answers as it says
under Schemathesis' fuzzing (generated valid and invalid requests to every operation:
no 5xx, every status, content type, header and body as documented, invalid input refused).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from amphi.settings import Settings
from api import openapi
from api.auth import mint_token
from tests._servers import amphi_env, uvicorn_server
from tests.api._support import VenueFixture

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
WEBHOOK_SECRET = "whsec_fuzz"
# The same cases every run, so that a red CI is reproducible; FUZZ_SEED=random explores.
SEED = os.environ.get("FUZZ_SEED", "20261205")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
])


async def test_it_is_served_as_json(api: httpx.AsyncClient) -> None:
    resp = await api.get(openapi.PATH)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == openapi.document()
    assert resp.json()["info"]["version"]  # the installed package's


@pytest.mark.slow
def test_a_live_server_answers_as_documented(
        venue: VenueFixture, settings: Settings, tmp_path: Path) -> None:
    """Schemathesis against uvicorn serving the venue in demo mode, signed in as staff (so
    that the scanning endpoints are reached too). uvicorn_server fails the test if the
    server logged a traceback."""
    env = amphi_env(settings, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, LOG_LEVEL="WARNING")
    token = mint_token(settings.jwt_secret, user_id="fuzzer", email="fuzzer@example.com",
                       is_staff=True)
    with uvicorn_server("api.app:app_from_env", env=env, log_dir=tmp_path) as url:
        run = subprocess.run(
            [SCHEMATHESIS, "run", f"{url}{openapi.PATH}",
             "--checks", CHECKS,
             "--phases", "examples,coverage,fuzzing,stateful",
             "--max-examples", str(EXAMPLES),
             # one worker: with two, Python 3.11's AST (which Hypothesis uses to describe
             # strategies) fails now and then in threads ("recursion depth mismatch")
             "--workers", "1",
             "--request-timeout", "10",
             *([] if SEED == "random" else ["--seed", SEED]),
             "--header", f"Authorization: Bearer {token}",
             "--suppress-health-check", "too_slow",
             "--generation-database", "none",
             "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]

"""Following one order through the logs: the API as a real process with LOG_FORMAT=json, a
purchase (hold, checkout, demo confirm) and the gate scan of its ticket over HTTP; the lines
of that order carry its order_id from creation to tickets to the gate, and the hold's lines
link the hold to the order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from amphi.settings import Settings
from tests._servers import amphi_env, uvicorn_server
from tests.api._support import VenueFixture, hold_body
from tests.payments._support import CHECKOUT, CONFIRM, CREATE_HOLD, bearer, checkout_body, rows
from tests.scan._support import JUNE_19, SCAN, la, staff


def ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()["data"]


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The log's JSON lines (uvicorn's own start-up lines are not ours)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_one_order_from_hold_to_gate(settings: Settings, venue: VenueFixture,
                                     ledger_engine: Engine, tmp_path: Path) -> None:
    env = amphi_env(settings, LOG_FORMAT="json", LOG_LEVEL="INFO",
                    SCAN_TEST_NOW=la(JUNE_19, 18).isoformat())
    fan = bearer(settings, "log-fan")
    with uvicorn_server("tests.scan._live_app:app_from_env", env=env,
                        log_dir=tmp_path) as url, httpx.Client(base_url=url, timeout=30) as api:
        hold = ok(api.post(CREATE_HOLD, json=hold_body(venue.sections["Orchestra Center"], 2),
                           headers={**fan, "X-Request-ID": "req-hold-1"}), 201)
        order = ok(api.post(CHECKOUT, json=checkout_body(hold["hold_id"]), headers=fan))
        assert ok(api.post(CONFIRM, json={"order_id": order["order_id"]},
                           headers=fan))["status"] == "COMPLETED"
        code = rows(ledger_engine, "SELECT code FROM tickets WHERE order_id = :id AND kind = "
                                   "'amphitheater' ORDER BY code LIMIT 1",
                    id=order["order_id"])[0]["code"]
        scanned = ok(api.post(SCAN, json={"code": code, "gate": "amphitheater"},
                              headers=staff(settings)))
        assert scanned["result"] == "admitted", scanned
    lines = json_lines(tmp_path / "uvicorn.log")
    assert lines, (tmp_path / "uvicorn.log").read_text()
    hold_id, order_id = hold["hold_id"], order["order_id"]

    of_order = [ln for ln in lines if ln.get("order_id") == order_id]
    messages = [ln["msg"] for ln in of_order]
    for msg in ("order created", "tickets issued", "scan"):
        assert msg in messages, messages
    assert messages.index("order created") < messages.index("tickets issued") < \
        messages.index("scan")
    scan_line = next(ln for ln in of_order if ln["msg"] == "scan")
    assert (scan_line["result"], scan_line["ticket_code"]) == ("admitted", code), scan_line
    issued = next(ln for ln in of_order if ln["msg"] == "tickets issued")
    assert issued["tickets"] == 2 and issued["hold_id"] == hold_id, issued

    of_hold = [ln for ln in lines if ln.get("hold_id") == hold_id]
    created = next(ln for ln in of_hold if ln["msg"] == "hold created")
    assert created["request_id"] == "req-hold-1" and created["quantity"] == 2, created
    # the link: the checkout's line names both the hold and the order it became
    assert any(ln["msg"] == "order created" and ln.get("order_id") == order_id
               for ln in of_hold), of_hold
    # a hold's one line is its access line: the request's facts and the hold's together
    access = [ln for ln in lines if ln.get("request_id") == "req-hold-1"]
    assert [ln["msg"] for ln in access] == ["hold created"], access
    assert (created["status"], created["method"]) == (201, "POST"), created
    assert all(ln["level"] in ("debug", "info", "warning") for ln in of_order), of_order

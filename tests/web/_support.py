"""What every journey does at each screen: an accessibility check with axe-core, and a
screenshot at phone and desktop widths for the docs (docs/web.md shows them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from tests.web.conftest import DESKTOP, PHONE

SCREENSHOTS = Path(os.environ.get("WEB_SCREENSHOTS_DIR",
                                  Path(__file__).resolve().parents[2] / "docs" / "img" / "web"))
BLOCKING = {"serious", "critical"}
_AXE = Axe()


def look(page: Page, screen: str) -> None:
    """No serious or critical axe-core violation on this screen; its screenshots written."""
    violations = [v for v in _AXE.run(page).response["violations"] if v["impact"] in BLOCKING]
    assert not violations, [(v["id"], v["help"], [n["target"] for n in v["nodes"]])
                            for v in violations]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=SCREENSHOTS / f"{screen}-{name}.png", full_page=True)
    page.set_viewport_size(PHONE)


def buy(url: str, section_id: str, day: str, quantity: int, email: str) -> dict[str, Any]:
    """A guest's demo purchase through the API (hold, checkout, confirm): the order."""
    with httpx.Client(base_url=url, timeout=10) as api:
        hold = api.post("/api/tickets/amphitheater/holds/create/", json={
            "section_id": section_id, "event_date": day, "quantity": quantity}).json()["data"]
        order = api.post("/api/payments/amphitheater/checkout/", json={
            "hold_id": hold["hold_id"],
            "billing_details": {"email": email, "firstName": "Sam", "lastName": "Lee"},
        }).json()["data"]
        done = api.post("/api/payments/amphitheater/confirm/",
                        json={"order_id": order["order_id"]})
        assert done.status_code == 200, done.text
        return dict(order)


def sell_out(url: str, section_id: str, day: str) -> int:
    """Hold every seat of a general-admission section (8 at a time, then what is left):
    how many holds it took."""
    holds = 0
    with httpx.Client(base_url=url, timeout=10) as api:
        quantity = 8
        while quantity:
            resp = api.post("/api/tickets/amphitheater/holds/create/", json={
                "section_id": section_id, "event_date": day, "quantity": quantity})
            if resp.status_code == 201:
                holds += 1
            elif resp.status_code == 409:
                quantity -= 1
            else:
                raise AssertionError(resp.text)
    return holds

"""The gate page's camera scanner: where the browser has BarcodeDetector, the steward
starts the camera and the QR code in front of it is checked at once, without typing.

Chromium runs with a fake camera (tests/web/conftest.py), and its Linux build has no
BarcodeDetector, so the page gets a stand-in for that browser API which reports, for each
frame, the code the test holds up: the QR payload read back from the ticket's own QR image.
The camera, the page's detection loop and everything after are real."""

from __future__ import annotations

import base64
import io

import httpx
import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from amphi.settings import Settings
from api.auth import mint_token
from tests.api._support import DAY, VenueFixture
from tests.web._support import buy, look

BARCODE_DETECTOR = """
window.BarcodeDetector = class {
  static async getSupportedFormats() { return ["qr_code"]; }
  constructor(options) { this.formats = options.formats; }
  async detect(source) {
    if (!(source instanceof HTMLVideoElement) || !source.videoWidth) throw new Error("no frame");
    return window.heldUp ? [{format: "qr_code", rawValue: window.heldUp}] : [];
  }
};"""


def qr_payload(data_uri: str) -> str:
    png = base64.b64decode(data_uri.split(",", 1)[1])
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    return found.text


def test_a_steward_scans_a_ticket_with_the_camera(page: Page, server: str, settings: Settings,
                                                   venue: VenueFixture) -> None:
    buy(server, venue.sections["Terrace"], DAY, 1, "camera@example.com")
    fan = mint_token(settings.jwt_secret, user_id="camera", email="camera@example.com")
    ticket = httpx.get(f"{server}/api/tickets/amphitheater/my-tickets/",
                       headers={"Authorization": f"Bearer {fan}"}).json()["data"][0]
    staff = mint_token(settings.jwt_secret, user_id="steward-2", email="s2@example.com",
                       is_staff=True)
    page.context.grant_permissions(["camera"])
    page.add_init_script(BARCODE_DETECTOR)
    page.goto(f"{server}/gate/")
    page.get_by_label("Staff token").fill(staff)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Scan with camera").click()
    expect(page.get_by_role("button", name="Stop camera")).to_be_visible()
    page.evaluate("payload => { window.heldUp = payload; }", qr_payload(ticket["qr_code"]))
    expect(page.get_by_role("status")).to_contain_text("ADMITTED")
    expect(page.get_by_role("status")).to_contain_text("Terrace")
    look(page, "gate-camera")
    page.evaluate("window.heldUp = null")
    page.get_by_role("button", name="Stop camera").click()
    expect(page.get_by_role("button", name="Scan with camera")).to_be_visible()
    # one scan for the code held up, however many frames showed it
    expect(page.locator("ol li")).to_have_count(1)

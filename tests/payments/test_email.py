"""The confirmation email: sent by the worker over real SMTP (aiosmtpd) or written to the
outbox; retried when sending fails, never in the way of the tickets; sent once."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import Engine

from amphi.settings import Settings
from services import queueing
from tests._servers import free_port
from tests.api._support import data
from tests.payments._support import (
    bearer,
    checkout,
    confirm,
    make_hold,
    one_set_of_tickets,
    open_png,
    order_row,
)
from workers import jobs


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(raw, policy=email.policy.default)
                for _, _, raw in self.received]


@contextlib.contextmanager
def smtp_server(port: int) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


async def _completed_order(open_api, settings: Settings, venue, quantity: int,
                           buyer_email: str) -> dict:
    fan = bearer(settings, "mail-fan", buyer_email)
    async with open_api(settings) as api:
        hold = await make_hold(api, venue.sections["Orchestra Center"], quantity, headers=fan)
        order = await checkout(api, hold["hold_id"], email=buyer_email, headers=fan)
        assert data(await confirm(api, order["order_id"], fan))["status"] == "COMPLETED"
    return order


def assert_confirmation(msg: EmailMessage, order: dict, tickets: list[dict],
                        recipient: str) -> None:
    assert msg["To"] == recipient
    assert order["order_number"] in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for t in tickets:
        assert f"Row {t['row']}, Seat {t['seat']}" in text, text
        assert f"Row {t['row']}, Seat {t['seat']}" in html
        assert t["code"] in text and t["pass_code"] in text
    images = [part for part in msg.walk() if part.get_content_type() == "image/png"]
    assert len(images) == len(tickets)  # one inline QR code a ticket
    for image in images:
        open_png(image.get_content())
    cids = {image["Content-ID"].strip("<>") for image in images}
    assert len(cids) == len(tickets)
    assert set(re.findall(r'src="cid:([^"]+)"', html)) == cids  # the HTML shows each of them


async def test_email_over_smtp_once(open_api, demo_settings: Settings, venue,
                                    ledger_engine: Engine, email_queue: Queue,
                                    worker) -> None:
    order = await _completed_order(open_api, demo_settings, venue, 3, "mail.fan@example.com")
    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 3)
    assert [(job.func_name, job.args) for job in email_queue.get_jobs()] == [
        ("workers.jobs.send_order_emails", ([order["order_id"]],))]
    port = free_port()
    with smtp_server(port) as inbox:
        smtp = demo_settings.replace(smtp_url=f"smtp://127.0.0.1:{port}")
        worker.run(smtp)
        assert len(inbox.received) == 1
        _, rcpt, _ = inbox.received[0]
        assert rcpt == ["mail.fan@example.com"]
        assert_confirmation(inbox.messages()[0], order, tickets, "mail.fan@example.com")
        assert order_row(ledger_engine, order["order_id"])["email_sent_at"] is not None

        # the job again (a retry, a second enqueue): nothing more is sent
        queueing.enqueue_emails(email_queue, [uuid.UUID(order["order_id"])])
        job = email_queue.get_jobs()[0]
        worker.run(smtp)
        assert job.return_value() == {order["order_id"]: "already sent"}
        assert len(inbox.received) == 1
    assert not list(Path(demo_settings.outbox_dir).glob("*"))  # SMTP, not the outbox


async def test_email_to_outbox_without_smtp(open_api, demo_settings: Settings, venue,
                                            ledger_engine: Engine, worker) -> None:
    assert not demo_settings.smtp_url
    order = await _completed_order(open_api, demo_settings, venue, 2, "outbox.fan@example.com")
    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 2)
    worker.run(demo_settings)
    files = list(Path(demo_settings.outbox_dir).glob("*.eml"))
    assert len(files) == 1
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert_confirmation(msg, order, tickets, "outbox.fan@example.com")
    assert order_row(ledger_engine, order["order_id"])["email_sent_at"] is not None


async def test_failed_send_is_retried_and_never_blocks_the_tickets(
    open_api, demo_settings: Settings, venue, ledger_engine: Engine, email_queue: Queue,
    worker, redis_client: redis.Redis,
) -> None:
    order = await _completed_order(open_api, demo_settings, venue, 2, "unlucky@example.com")
    port = free_port()  # nothing listens there (yet)
    smtp = demo_settings.replace(smtp_url=f"smtp://127.0.0.1:{port}")
    [job] = email_queue.get_jobs()
    worker.run(smtp, check=False)

    job = Job.fetch(job.id, connection=email_queue.connection)
    assert job.get_status() == JobStatus.SCHEDULED  # RQ retries it with backoff
    assert job.retries_left == queueing.RETRY.max - 1
    with pytest.raises(RuntimeError, match="ConnectionRefusedError"):  # what RQ retries
        jobs.send_order_emails([order["order_id"]])
    # the tickets were issued and stay issued; only the email is pending
    row = order_row(ledger_engine, order["order_id"])
    assert (row["status"], row["email_sent_at"]) == ("completed", None)
    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 2)
    assert not list(Path(demo_settings.outbox_dir).glob("*"))

    with smtp_server(port) as inbox:  # the mail server is back; the retry comes due
        ScheduledJobRegistry(queue=email_queue).requeue(job.id)
        worker.run(smtp)
        assert len(inbox.received) == 1
        assert_confirmation(inbox.messages()[0], order, tickets, "unlucky@example.com")
        queueing.enqueue_emails(email_queue, [uuid.UUID(order["order_id"])])
        worker.run(smtp)
        assert len(inbox.received) == 1
    assert order_row(ledger_engine, order["order_id"])["email_sent_at"] is not None


async def test_qr_images_are_inline_not_attachments(open_api, demo_settings: Settings, venue,
                                                    worker) -> None:
    """The QR codes are shown in the HTML body (cid:), so they are inline parts; with
    Content-Disposition: attachment many mail clients list them as attachments instead."""
    await _completed_order(open_api, demo_settings, venue, 2, "inline@example.com")
    worker.run(demo_settings)
    [eml] = Path(demo_settings.outbox_dir).glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    images = [part for part in msg.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 2
    assert [image.get_content_disposition() for image in images] == ["inline", "inline"]


async def test_an_email_for_an_order_not_completed_sends_nothing(
    open_api, demo_settings: Settings, venue, ledger_engine: Engine, email_queue: Queue,
    worker,
) -> None:
    """Finalisation queues the email just before its commit; if that commit fails, the job
    finds the order still pending and sends nothing (the retry queues it again)."""
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Lawn"], 2)
        order = await checkout(api, hold["hold_id"])
    queueing.enqueue_emails(email_queue, [uuid.UUID(order["order_id"])])
    job = email_queue.get_jobs()[0]
    worker.run(demo_settings)
    assert job.return_value() == {order["order_id"]: "not completed (pending)"}
    assert not list(Path(demo_settings.outbox_dir).glob("*"))
    assert order_row(ledger_engine, order["order_id"])["email_sent_at"] is None

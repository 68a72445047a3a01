"""Order confirmation email: each seat, its festival pass and its QR code inline; and the
email of a ticket someone was given (a transfer), with its new QR code. Sent by
SMTP (SMTP_URL: smtp://[user:pass@]host[:port], smtps://... for TLS, ?starttls=1), or
written as an .eml file to OUTBOX_DIR when no SMTP server is configured."""

from __future__ import annotations

import contextlib
import html
import logging
import smtplib
import uuid
from datetime import UTC, datetime
from email.header import Header
from email.message import Message
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import selectinload, sessionmaker

from amphi import qr
from amphi.settings import Settings
from ledger.models import AmphitheaterTicket, Order, OrderStatus, Ticket, TicketTransfer
from ledger.tickets import tickets_of_orders

log = logging.getLogger(__name__)


def _pass_code(t: AmphitheaterTicket) -> str:
    return t.festival_day_ticket.code if t.festival_day_ticket else "-"


def _place(t: AmphitheaterTicket) -> str:
    if t.row is None:
        return f"{t.section.name} (general admission)"
    return f"Section {t.section.name}, Row {t.row}, Seat {t.seat}"


def build_message(settings: Settings, order: Order,
                  tickets: list[AmphitheaterTicket]) -> Message:
    """An order's confirmation: each seat, its festival pass and its QR code."""
    day = order.event_date.strftime("%A, %B %-d, %Y")
    name = order.buyer_first_name or "there"
    lines = [f"Hi {name},", "", f"Order {order.order_number} for {day}:", ""]
    for t in tickets:
        lines.append(f"  {_place(t)}: ticket {t.ticket.code}, festival day pass {_pass_code(t)}")
    lines += ["", "Each ticket's QR code opens the amphitheatre gate, and the festival gates",
              "on the same day. Show them at the gate from this email or your account."]

    cids = [make_msgid(domain="amphi.local") for _ in tickets]
    rows = "".join(
        f"<tr><td><img src=\"cid:{cid[1:-1]}\" alt=\"QR {html.escape(t.ticket.code)}\"></td>"
        f"<td><b>{html.escape(_place(t))}</b><br>Ticket {html.escape(t.ticket.code)}<br>"
        f"Festival day pass {html.escape(_pass_code(t))}"
        "</td></tr>"
        for t, cid in zip(tickets, cids, strict=True)
    )
    html_body = (f"<p>Hi {html.escape(name)},</p><p>Order <b>{html.escape(order.order_number)}</b> "
                 f"for {html.escape(day)}:</p><table>{rows}</table>"
                 "<p>Each QR code opens the amphitheatre gate, and the festival gates on the "
                 "same day.</p>")
    return _assemble(settings, to=order.buyer_email,
                     subject=f"Your Pacific Amphitheatre tickets - {order.order_number}",
                     text="\n".join(lines), html_body=html_body,
                     qr_codes=[(cid, t.ticket) for t, cid in zip(tickets, cids, strict=True)])


def build_transfer_message(settings: Settings, transfer: TicketTransfer,
                           ticket: AmphitheaterTicket) -> Message:
    """The recipient's email: the seat, the ticket's new codes and its QR code inline."""
    day = ticket.event_date.strftime("%A, %B %-d, %Y")
    code, pass_code = ticket.ticket.code, _pass_code(ticket)
    text = (f"Hello,\n\n{transfer.from_email} has sent you a ticket for {day}:\n\n"
            f"  {_place(ticket)}: ticket {code}, festival day pass {pass_code}\n\n"
            "Its QR code opens the amphitheatre gate, and the festival gates on the same day.\n"
            "Sign in with this email address to see it in your account.\n")
    cid = make_msgid(domain="amphi.local")
    html_body = (
        f"<p>Hello,</p><p>{html.escape(transfer.from_email)} has sent you a ticket for "
        f"{html.escape(day)}:</p><p><img src=\"cid:{cid[1:-1]}\" alt=\"QR {html.escape(code)}\">"
        f"<br><b>{html.escape(_place(ticket))}</b><br>Ticket {html.escape(code)}<br>"
        f"Festival day pass {html.escape(pass_code)}</p>"
        "<p>Its QR code opens the amphitheatre gate, and the festival gates on the same day.</p>")
    return _assemble(settings, to=transfer.to_email,
                     subject=f"A Pacific Amphitheatre ticket for you - {day}", text=text,
                     html_body=html_body, qr_codes=[(cid, ticket.ticket)])


def _assemble(settings: Settings, *, to: str, subject: str, text: str, html_body: str,
              qr_codes: list[tuple[str, Ticket]]) -> Message:
    """multipart/alternative: the text, and the HTML with each ticket's QR code inline
    (multipart/related), each image under its Content-ID. Built with the email package's
    classic MIME classes: its newer EmailMessage API parses every header it sets, and cost
    more than the QR codes."""
    related = MIMEMultipart("related")
    related.attach(MIMEText(html_body, "html", "utf-8"))
    for cid, ticket in qr_codes:
        image = MIMEImage(qr.png(ticket.qr_payload), "png")
        image["Content-ID"] = cid
        image.add_header("Content-Disposition", "inline", filename=f"{ticket.code}.png")
        related.attach(image)
    msg = MIMEMultipart("alternative")
    # typeshed types MIMEBase's headers as str; its compat32 policy takes a Header as well
    msg["Subject"] = Header(subject, "utf-8")  # type: ignore[assignment]
    msg["From"] = settings.email_from
    msg["To"] = to
    msg["Message-ID"] = make_msgid(domain="amphi.local")
    msg["Date"] = formatdate(localtime=False)
    msg.attach(MIMEText(text, "plain", "utf-8"))
    msg.attach(related)
    return msg


class Mailer:
    """Delivers a batch of messages: over one SMTP connection, opened at the first message
    (a new connection and handshake per email would cost more than the email), or into the
    outbox directory when no SMTP server is configured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
            self.smtp = None

    def _connect(self) -> smtplib.SMTP:
        url = urlsplit(self.settings.smtp_url)
        options = parse_qs(url.query)
        host = url.hostname or "localhost"
        smtp_cls = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
        smtp = smtp_cls(host, url.port or (465 if url.scheme == "smtps" else 25), timeout=30)
        if options.get("starttls", ["0"])[0] in ("1", "true"):
            smtp.starttls()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        return smtp

    def deliver(self, msg: Message) -> str:
        if not self.settings.smtp_url:
            outbox = Path(self.settings.outbox_dir)
            outbox.mkdir(parents=True, exist_ok=True)
            path = outbox / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
            path.write_bytes(msg.as_bytes())
            return f"written {path}"
        if self.smtp is None:
            self.smtp = self._connect()
        try:
            self.smtp.send_message(msg)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.smtp = None  # the next message (or the job's retry) connects afresh
            raise
        return f"sent via {urlsplit(self.settings.smtp_url).hostname}"


def _outcome(order: Order | None) -> str | None:
    """Why an order gets no email now, or None if it should."""
    if order is None:
        return "no such order"
    if order.email_sent_at is not None:
        return "already sent"
    if order.status != OrderStatus.COMPLETED:  # its finalisation rolled back
        return f"not completed ({order.status.value})"
    return None


def send_order_emails(settings: Settings, sessions: sessionmaker,
                      order_ids: list[uuid.UUID]) -> dict[str, str]:
    """Each order's confirmation, once. The job's orders are locked and read with their
    tickets in two queries (a finalisation still committing them is waited for), each
    email is marked sent as it goes, and one commit ends the job: a worker killed in the
    middle re-sends what it had sent (at least once, never lost). Raises after trying them
    all if any failed: the retry sends only those."""
    outcomes: dict[str, str] = {}
    failed: dict[str, Exception] = {}
    with Mailer(settings) as mailer, sessions.begin() as session:
        orders = {o.id: o for o in session.scalars(
            select(Order).where(Order.id.in_(order_ids)).order_by(Order.id)
            .with_for_update())}
        tickets = tickets_of_orders(session, [i for i in order_ids
                                              if _outcome(orders.get(i)) is None])
        for order_id in order_ids:
            order = orders.get(order_id)
            skip = _outcome(order)
            if skip is not None:
                outcomes[str(order_id)] = skip
                continue
            assert order is not None
            try:
                outcome = mailer.deliver(build_message(settings, order, tickets[order_id]))
            except Exception as exc:
                log.warning("confirmation email failed",
                            extra={"order_id": str(order_id), "error": repr(exc)})
                failed[str(order_id)] = exc
                continue
            order.email_sent_at = datetime.now(UTC)
            outcomes[str(order_id)] = outcome
            log.info("confirmation email", extra={"order_id": str(order_id),
                                                  "outcome": outcome})
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(order_ids)} emails not sent: {failed}")
    return outcomes


def send_transfer_email(settings: Settings, sessions: sessionmaker,
                        transfer_id: uuid.UUID) -> str:
    """The recipient's email of one transfer, once (as the order emails: at least once,
    never lost; a later transfer of the same ticket sends its own)."""
    with Mailer(settings) as mailer, sessions.begin() as session:
        transfer = session.scalar(select(TicketTransfer).where(TicketTransfer.id == transfer_id)
                                  .with_for_update())
        if transfer is None:
            return "no such transfer"
        if transfer.email_sent_at is not None:
            return "already sent"
        ticket = session.scalar(
            select(AmphitheaterTicket).where(AmphitheaterTicket.ticket_id == transfer.ticket_id)
            .options(selectinload(AmphitheaterTicket.ticket),
                     selectinload(AmphitheaterTicket.festival_day_ticket),
                     selectinload(AmphitheaterTicket.section)))
        assert ticket is not None, "a transferred ticket has its seat"
        outcome = mailer.deliver(build_transfer_message(settings, transfer, ticket))
        transfer.email_sent_at = datetime.now(UTC)
    log.info("transfer email", extra={"transfer_id": str(transfer_id),
                                      "ticket_id": str(transfer.ticket_id), "outcome": outcome})
    return outcome

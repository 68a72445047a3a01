"""The work amphi queues for its worker: the queue names, the retry policy and the enqueue
calls, used by the API, the CLI and finalisation alike. The jobs themselves are the
functions of `workers.jobs`, named here by their import path (RQ imports them in the
worker), so that nothing that queues work imports the worker.

Three queues, each worked by processes of its own (workers/queues.py): finalisation (a job
finalises a batch of payments), maintenance (the sweeps), email (a job sends a batch of
orders' confirmations). Email has a queue of its own so that a backlog of emails never waits
in front of a ticket; a job is one batch because RQ's own work per job (about a dozen Redis
round trips) would otherwise cost more than the ticket. Work is enqueued only after the
transaction that made it necessary has committed (or, for emails, just before it commits).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from rq import Queue, Retry
from sqlalchemy.orm import Session, sessionmaker

from amphi import metrics
from amphi.payments import PaymentGateway
from amphi.signing import Signer
from engine import scripts
from services import finalize

log = logging.getLogger(__name__)

DEFAULT = "amphi"
MAINTENANCE = "amphi-maintenance"
EMAIL = "amphi-email"
QUEUES = (DEFAULT, MAINTENANCE, EMAIL)  # the order a worker takes jobs in

FINALIZE_JOB = "workers.jobs.finalize_payments"
FAIL_JOB = "workers.jobs.fail_order"
EMAIL_JOB = "workers.jobs.send_order_emails"
TRANSFER_EMAIL_JOB = "workers.jobs.send_transfer_email"

# A batch of 200 payments takes well under a second; a job killed with its worker is
# retried this long (and a margin) after it started.
FINALIZE_TIMEOUT_SECONDS = 30
EMAILS_PER_JOB = 20  # a job of 20 emails with their QR codes takes ~0.2 s

# Backoff for work that must happen (tickets, emails): about 25 minutes in all.
RETRY = Retry(max=6, interval=[2, 5, 15, 60, 300, 1200])
KEEP_FAILED = 7 * 86400

# A payment as a job carries it: order id, Stripe event id and type, accepted at (epoch s)
PaymentArgs = tuple[str, str | None, str | None, float | None]


def finalize_deps(*, redis: scripts.Client, sessions: sessionmaker[Session],
                  payments: PaymentGateway, queue: Queue, signer: Signer) -> finalize.Deps:
    """What finalisation needs: its emails go to the email queue beside `queue`, its
    latencies to the histogram in `queue`'s Redis."""
    emails = Queue(EMAIL, connection=queue.connection)

    def observe(seconds: list[float]) -> None:
        try:
            metrics.record_finalize_latency(queue.connection, seconds)
        except Exception as exc:  # the tickets are committed; a lost metric is not an error
            log.warning("finalisation latency not recorded", extra={"error": repr(exc)})

    return finalize.Deps(redis=redis, sessions=sessions, payments=payments,
                         enqueue_emails=lambda ids: enqueue_emails(emails, ids),
                         signer=signer, observe_latency=observe)


def payment_args(payment: finalize.Payment) -> PaymentArgs:
    event = payment.event
    return (str(payment.order_id), event.id if event else None, event.type if event else None,
            payment.accepted_at)


def payments_of(args: Sequence[PaymentArgs]) -> list[finalize.Payment]:
    return [finalize.Payment(uuid.UUID(order_id), event_ref(event_id, event_type), accepted_at)
            for order_id, event_id, event_type, accepted_at in args]


def event_ref(event_id: str | None, event_type: str | None) -> finalize.StripeEventRef | None:
    return finalize.StripeEventRef(event_id, event_type or "") if event_id else None


def enqueue_payments(queue: Queue, payments: Sequence[finalize.Payment]) -> None:
    """One job for the batch: what the webhooks accepted in the same moment."""
    queue.enqueue(FINALIZE_JOB, [payment_args(p) for p in payments], retry=RETRY,
                  job_timeout=FINALIZE_TIMEOUT_SECONDS, failure_ttl=KEEP_FAILED,
                  description=f"finalize {len(payments)} order(s): "
                              f"{', '.join(str(p.order_id) for p in payments[:3])}"
                              f"{' ...' if len(payments) > 3 else ''}")


def enqueue_finalize(queue: Queue, order_id: uuid.UUID, event_id: str | None = None,
                     event_type: str | None = None) -> None:
    enqueue_payments(queue, [finalize.Payment(order_id, event_ref(event_id, event_type))])


def enqueue_fail(queue: Queue, order_id: uuid.UUID, event_id: str | None,
                 event_type: str | None, reason: str) -> None:
    queue.enqueue(FAIL_JOB, str(order_id), event_id, event_type, reason, retry=RETRY,
                  job_timeout=60, failure_ttl=KEEP_FAILED)


def enqueue_emails(queue: Queue, order_ids: Sequence[uuid.UUID]) -> None:
    """`queue` is the email queue; one job per EMAILS_PER_JOB orders, in one round trip."""
    ids = [str(i) for i in order_ids]
    chunks = [ids[i:i + EMAILS_PER_JOB] for i in range(0, len(ids), EMAILS_PER_JOB)]
    queue.enqueue_many([
        Queue.prepare_data(EMAIL_JOB, args=(chunk,), retry=RETRY, timeout=60,
                           failure_ttl=KEEP_FAILED,
                           description=f"email {len(chunk)} order(s): {', '.join(chunk[:3])}"
                                       f"{' ...' if len(chunk) > 3 else ''}")
        for chunk in chunks
    ])


def enqueue_transfer_email(queue: Queue, transfer_id: uuid.UUID) -> None:
    """The recipient's email of a transfer, on the email queue beside `queue`."""
    Queue(EMAIL, connection=queue.connection).enqueue(
        TRANSFER_EMAIL_JOB, str(transfer_id), retry=RETRY, job_timeout=60,
        failure_ttl=KEEP_FAILED, description=f"transfer email {transfer_id}")

"""The RQ jobs: module-level functions of plain ids, safe to run twice, retried with
backoff, enqueued only after the transaction that made them necessary has committed."""

from __future__ import annotations

import uuid

from redis import Redis
from rq import Queue, Retry
from sqlalchemy.orm import sessionmaker

from amphi.payments import PaymentGateway
from amphi.signing import Signer
from workers import context, email, finalize

DEFAULT = "amphi"
MAINTENANCE = "amphi-maintenance"

# Backoff for work that must happen (tickets, emails): about 25 minutes in all.
RETRY = Retry(max=6, interval=[2, 5, 15, 60, 300, 1200])


def finalize_deps(*, redis: Redis, sessions: sessionmaker, payments: PaymentGateway,
                  queue: Queue, signer: Signer) -> finalize.Deps:
    """What finalisation needs, with its emails enqueued on `queue`."""
    return finalize.Deps(redis=redis, sessions=sessions, payments=payments,
                         enqueue_email=lambda order_id: enqueue_email(queue, order_id),
                         signer=signer)


def deps(queue: Queue) -> finalize.Deps:
    return finalize_deps(redis=context.hold_redis(), sessions=context.sessions(),
                         payments=context.payments(), queue=queue, signer=context.signer())


def _event(event_id: str | None, event_type: str | None) -> finalize.StripeEventRef | None:
    return finalize.StripeEventRef(event_id, event_type or "") if event_id else None


def finalize_order(order_id: str, event_id: str | None = None,
                   event_type: str | None = None) -> str:
    status = finalize.finalize_order(
        deps(context.queue(DEFAULT)), uuid.UUID(order_id), event=_event(event_id, event_type)
    )
    return status.value


def fail_order(order_id: str, event_id: str | None = None, event_type: str | None = None,
               reason: str = "The payment failed.") -> str:
    status = finalize.fail_order(
        deps(context.queue(DEFAULT)), uuid.UUID(order_id), event=_event(event_id, event_type),
        reason=reason,
    )
    return status.value


def send_order_email(order_id: str) -> str:
    return email.send_order_email(context.settings(), context.sessions(), uuid.UUID(order_id))


def enqueue_finalize(queue: Queue, order_id: uuid.UUID, event_id: str | None = None,
                     event_type: str | None = None) -> None:
    queue.enqueue(finalize_order, str(order_id), event_id, event_type, retry=RETRY,
                  job_timeout=120, failure_ttl=7 * 86400,
                  description=f"finalize order {order_id}")


def enqueue_fail(queue: Queue, order_id: uuid.UUID, event_id: str | None,
                 event_type: str | None, reason: str) -> None:
    queue.enqueue(fail_order, str(order_id), event_id, event_type, reason, retry=RETRY,
                  job_timeout=60, failure_ttl=7 * 86400)


def enqueue_email(queue: Queue, order_id: uuid.UUID) -> None:
    queue.enqueue(send_order_email, str(order_id), retry=RETRY, job_timeout=120,
                  failure_ttl=7 * 86400, description=f"email order {order_id}")

"""The RQ jobs: module-level functions of plain values, safe to run twice, retried with
backoff (services/queueing.py queues them and says which queue is for what)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from amphi import errors
from services import finalize
from services.queueing import DEFAULT, PaymentArgs, event_ref, finalize_deps, payments_of
from workers import context, email


class OrdersNotFinalised(RuntimeError):
    """Some orders of a batch could not be finalised (each with its exception); RQ retries
    the batch."""

    def __init__(self, failed: dict[str, Exception], total: int) -> None:
        super().__init__(f"{len(failed)} of {total} orders not finalised: {failed}")
        self.failed = failed


def deps() -> finalize.Deps:
    return finalize_deps(redis=context.hold_redis(), sessions=context.sessions(),
                         payments=context.payments(), queue=context.queue(DEFAULT),
                         signer=context.signer())


def finalize_payments(payments: Sequence[PaymentArgs]) -> dict[str, str]:
    """Finalise a batch; fails (RQ retries it) if any order could not be, after the others
    are done: they are final, so the retry only redoes the ones that failed."""
    batch = payments_of(payments)
    outcomes = {p.order_id: o for p, o in zip(batch, finalize.finalize_orders(deps(), batch),
                                              strict=True)}
    # an order the ledger does not have will not appear by retrying (it was logged)
    failed = {str(k): v for k, v in outcomes.items()
              if isinstance(v, Exception) and not isinstance(v, errors.OrderNotFound)}
    if failed:
        raise OrdersNotFinalised(failed, len(outcomes))
    return {str(k): str(v if isinstance(v, Exception) else v.status)
            for k, v in outcomes.items()}


def finalize_order(order_id: str, event_id: str | None = None,
                   event_type: str | None = None) -> str:
    return finalize_payments([(order_id, event_id, event_type, None)])[order_id]


def fail_order(order_id: str, event_id: str | None = None, event_type: str | None = None,
               reason: str = "The payment failed.") -> str:
    status = finalize.fail_order(
        deps(), uuid.UUID(order_id), event=event_ref(event_id, event_type), reason=reason,
    )
    return status.value


def send_order_emails(order_ids: Sequence[str]) -> dict[str, str]:
    return email.send_order_emails(context.settings(), context.sessions(),
                                   [uuid.UUID(i) for i in order_ids])


def send_transfer_email(transfer_id: str) -> str:
    return email.send_transfer_email(context.settings(), context.sessions(),
                                     uuid.UUID(transfer_id))

"""The domain's typed errors. Each has a stable `code`; the API maps classes to HTTP once."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    message = "The request could not be completed."

    def __init__(self, message: str | None = None, **details: object) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details


# -- bad input ---------------------------------------------------------------------------
class InvalidRequest(DomainError):
    code = "invalid_request"
    message = "The request is malformed."


class ValidationFailed(DomainError):
    """Well-formed, but a value is out of range or of the wrong form."""

    code = "validation_error"
    message = "A field has an invalid value."


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    message = "This endpoint takes a JSON body: send it with Content-Type: application/json."


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    message = "The request body is too large."


class Unauthorized(DomainError):
    code = "unauthorized"
    message = "A valid Bearer token is required."


class Forbidden(DomainError):
    code = "forbidden"
    message = "You may not do this."


# -- catalogue --------------------------------------------------------------------------
class NotFound(DomainError):
    code = "not_found"
    message = "Not found."


class VenueNotFound(NotFound):
    code = "venue_not_found"
    message = "No such venue."


class SectionNotFound(NotFound):
    code = "section_not_found"
    message = "No such section."


class EventDateNotFound(NotFound):
    code = "event_date_not_found"
    message = "There is no event on that date."


class EventDatePast(DomainError):
    code = "event_date_past"
    message = "That event date is over; tickets are no longer on sale."


class NotOnSale(DomainError):
    code = "not_on_sale"
    message = "This section is not on sale for that date."


# -- holds ------------------------------------------------------------------------------
class SoldOut(DomainError):
    code = "sold_out"
    message = "Not enough seats left in this section."


class NoAdjacentSeats(DomainError):
    code = "not_enough_adjacent_seats"
    message = "Not enough adjacent seats in this section; try a smaller party or another section."


class AccessibleUnavailable(DomainError):
    """Fewer wheelchair spaces (with companion seats, if asked for) are free than asked for
    (`available`: how many are)."""

    code = "accessible_unavailable"
    message = "Not enough wheelchair spaces left in this section; try fewer, or another section."


class SeatsUnavailable(DomainError):
    """Some of the seats a fan picked are held or sold (`unavailable` lists them)."""

    code = "seats_unavailable"
    message = "Some of the seats you picked are no longer available; pick others."


class RateLimited(DomainError):
    code = "rate_limited"
    message = "Too many hold requests; please wait a moment."


class TooManyHolds(DomainError):
    code = "too_many_holds"
    message = "You already hold as many seats as allowed; release or buy a hold first."


class IdempotencyMismatch(DomainError):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different request."


class HoldNotFound(NotFound):
    code = "hold_not_found"
    message = "Seat hold not found; it may have expired. Please create a new hold."


class HoldNotActive(DomainError):
    code = "hold_not_active"
    message = "This seat hold is no longer active."


class OrderNotFound(NotFound):
    code = "order_not_found"
    message = "No such order."


class PaymentNotCompleted(DomainError):
    code = "payment_not_completed"
    message = "The payment has not succeeded (yet); tickets are issued once it does."


class CheckoutConflict(DomainError):
    code = "checkout_conflict"
    message = "This hold cannot be checked out."


class TicketNotFound(NotFound):
    code = "ticket_not_found"
    message = "No such ticket."


class TransferRefused(DomainError):
    """The ticket cannot change hands: used at a gate, not valid, or it is too late."""

    code = "transfer_refused"
    message = "This ticket cannot be transferred."


class BlockConflict(DomainError):
    code = "block_conflict"
    message = "The block in Redis does not match the ledger."


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
    message = "The service is busy or a dependency is down; please retry."


class InventoryUnavailable(ServiceUnavailable):
    """The ledger has the seat block, Redis does not: Redis lost its data (a restart without
    persistence, a failover to an empty replica, a flush) and the worker is restoring it."""

    code = "inventory_unavailable"
    message = "Seat availability is being restored; please retry in a few seconds."

    def __init__(self, message: str | None = None, **details: object) -> None:
        details.setdefault("retry_after_ms", 2000)
        super().__init__(message, **details)


# -- the waiting room ---------------------------------------------------------------------
class AdmissionRequired(Forbidden):
    """A waiting room is open for the date: holds need the fan's admission token."""

    code = "admission_required"
    message = ("A waiting room is open for this date: join it (POST /api/queue/join/) and "
               "send your admission token in X-Admission-Token once admitted.")


class QueueNotOpen(DomainError):
    """No waiting room takes fans for the date now (none, closed, or not yet open)."""

    code = "queue_not_open"
    message = "There is no waiting room open for this date."

"""localstripe as the payment tests run it:
`python -m tests.payments._localstripe --port N --from-scratch`.

localstripe 1.15 answers 400 "Unexpected receipt_email, description" to a PaymentIntent
create that sends parameters it does not model. Real Stripe accepts both, and
`amphi.payments.StripeGateway.create_intent` sends both, so the fake learns to accept and
store them (only those two, and only if it does not already). Nothing else is changed.
"""

from __future__ import annotations

import inspect
from typing import Any

from localstripe import resources, server

ACCEPTED = ("receipt_email", "description")


def accept_gateway_params() -> None:
    cls = resources.PaymentIntent
    known = inspect.signature(cls.__init__).parameters
    missing = [name for name in ACCEPTED if name not in known]
    if not missing:
        return
    original = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        extra = {name: kwargs.pop(name, None) for name in missing}
        original(self, *args, **kwargs)
        for name, value in extra.items():
            setattr(self, name, value)

    cls.__init__ = __init__


if __name__ == "__main__":
    accept_gateway_params()
    server.start()

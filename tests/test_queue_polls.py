"""The poll's query string, read as Starlette's query_params reads it."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from starlette.datastructures import QueryParams

from api.queue_polls import queue_ticket


@pytest.mark.parametrize("query", [
    urlencode({"queue_ticket": "2027-06-19.1.17.0.user:fan-1.sig-_~"}),
    urlencode({"queue_ticket": "a b+c/d%"}),
    "queue_ticket=one&queue_ticket=two",
    "other=1&queue_ticket=",
    "queue_ticket",
    "",
    "x=%ZZ&queue_ticket=%E2%82%AC",
])
def test_the_ticket_is_the_one_starlette_reads(query: str) -> None:
    assert queue_ticket(query.encode("latin-1")) == QueryParams(query).get("queue_ticket", "")

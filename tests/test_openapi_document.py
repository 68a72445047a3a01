"""api/openapi.yaml describes the app as it is: a valid OpenAPI 3.1 document, one operation
for each route the app registers (HEAD, which Starlette adds to every GET, is implied), the
version of pyproject.toml, every domain error code, and input patterns that accept exactly
what api/inputs.py accepts. Needs neither Redis nor PostgreSQL;
tests/api/test_openapi.py serves it and fuzzes a live server against it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from starlette.routing import Route

from amphi import errors
from amphi.settings import Settings
from api import inputs
from api.app import create_app

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "api" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _document() -> dict[str, Any]:
    return yaml.safe_load(DOCUMENT.read_text())


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in _document()["paths"].items()
            for method in item if method in METHODS}


def app_operations() -> set[tuple[str, str]]:
    """(path, method) of every route of the app but /admin (a Mount, out of scope); HEAD
    only where it is not the implied companion of a GET."""
    app = create_app(Settings())
    found = set()
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")
        found |= {(route.path, method) for method in methods}
    return found


def test_every_route_is_documented_once() -> None:
    documented, registered = documented_operations(), app_operations()
    assert documented == registered, {"undocumented": sorted(registered - documented),
                                      "not in the app": sorted(documented - registered)}


def test_the_document_is_valid_openapi_3_1() -> None:
    import schemathesis  # a dev tool, only here

    schema = schemathesis.openapi.from_path(str(DOCUMENT))
    schema.validate()
    assert sum(1 for _ in schema.get_all_operations()) == len(documented_operations())


def test_version_and_operation_ids() -> None:
    document = _document()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == project["version"]
    ids = [op["operationId"] for item in document["paths"].values()
           for method, op in item.items() if method in METHODS]
    assert len(ids) == len(set(ids))


def _subclasses(cls: type[errors.DomainError]) -> list[type[errors.DomainError]]:
    return [cls, *(s for sub in cls.__subclasses__() for s in _subclasses(sub))]


def test_every_error_code_is_listed() -> None:
    listed = _document()["components"]["schemas"]["Error"]["properties"]["error"][
        "properties"]["code"]["description"]
    codes = {cls.code for cls in _subclasses(errors.DomainError)} - {"error"}
    assert not {c for c in codes if f"`{c}`" not in listed}


class _Headers:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def _accepted(check: Any) -> bool:
    try:
        check()
    except errors.DomainError:
        return False
    return True


def test_patterns_accept_what_the_code_accepts() -> None:
    """The string forms of `quantity`, the Idempotency-Key header and the scanner's text
    fields: each pattern matches exactly the values api/inputs.py takes."""
    document = _document()
    schemas, parameters = document["components"]["schemas"], document["components"]["parameters"]
    quantity = re.compile(schemas["Quantity"]["anyOf"][1]["pattern"])
    key = re.compile(parameters["IdempotencyKey"]["schema"]["pattern"])
    text = re.compile(schemas["PresentedCode"]["pattern"])
    latin1 = [chr(i) for i in range(256)]
    everyday = [*latin1, *(chr(i) for i in range(0x2000, 0x3001))]
    for c in everyday:
        for value in (c, f"{c}3", f"3{c}", f" {c}8{c} ", f"0000{c}1", f"00000{c}"):
            assert bool(quantity.search(value)) == _accepted(
                lambda v=value: inputs.field_int({"q": v}, "q", low=1, high=8)), repr(value)
        for value in (f" {c} ", f"a{c}", c * 3):
            assert bool(text.search(value)) == _accepted(
                lambda v=value: inputs.field_text({"t": v}, "t", required=True, limit=512)
            ), repr(value)
    for c in latin1:
        for value in (c, f" {c} ", f"a{c}b", c * 255, c * 256, "a" + c * 254, f"{c}{'a' * 255}"):
            assert bool(key.search(value)) == _accepted(
                lambda v=value: inputs.idempotency_key(_Headers({"idempotency-key": v}))  # type: ignore[arg-type]
            ), repr(value)


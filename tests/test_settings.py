"""Production refuses to start with a weak or default secret, and a CORS origin must be one.
Pure: no server, but for one `amphi serve` that must not start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from amphi.settings import DEV_JWT_SECRET, Settings, SettingsError

PRODUCTION = {
    "APP_ENV": "production",
    "JWT_SECRET": "a-real-production-secret-of-at-least-32-bytes",
    "TICKET_SIGNING_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "ADMIN_PASSWORD": "a-long-production-password",
}


def test_a_complete_production_configuration_starts() -> None:
    settings = Settings.from_env(PRODUCTION)
    assert settings.app_env == "production"


@pytest.mark.parametrize(("name", "value", "complaint"), [
    ("JWT_SECRET", None, "JWT_SECRET"),
    ("JWT_SECRET", DEV_JWT_SECRET, "JWT_SECRET"),
    ("JWT_SECRET", "short-secret", "JWT_SECRET"),
    ("TICKET_SIGNING_KEY", None, "TICKET_SIGNING_KEY"),
    ("ADMIN_PASSWORD", None, "ADMIN_PASSWORD"),
    ("ADMIN_PASSWORD", "admin", "ADMIN_PASSWORD"),
    ("ADMIN_PASSWORD", "eleven-char", "ADMIN_PASSWORD"),
])
def test_production_refuses_weak_or_default_secrets(name: str, value: str | None,
                                                    complaint: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != name}
    if value is not None:
        env[name] = value
    with pytest.raises(SettingsError, match=complaint):
        Settings.from_env(env)
    # development keeps its defaults
    Settings.from_env({k: v for k, v in env.items() if k != "APP_ENV"})


def test_amphi_serve_does_not_start_in_production_with_defaults() -> None:
    env = {**os.environ, "APP_ENV": "production"}
    for name in ("JWT_SECRET", "TICKET_SIGNING_KEY", "ADMIN_PASSWORD"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "serve", "--port", "1"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("configuration error: JWT_SECRET"), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("origins", [
    "https://tickets.example", "https://tickets.example,http://localhost:5173",
    " https://tickets.example/ ", "*"])
def test_cors_origins_are_read(origins: str) -> None:
    settings = Settings.from_env({"CORS_ALLOWED_ORIGINS": origins})
    assert settings.cors_allowed_origins == tuple(
        o.strip().rstrip("/") for o in origins.split(","))


@pytest.mark.parametrize("origin", ["tickets.example", "https://tickets.example/app",
                                    "ftp://tickets.example", "https://*.example"])
def test_a_cors_origin_must_be_an_origin(origin: str) -> None:
    with pytest.raises(SettingsError, match="CORS_ALLOWED_ORIGINS"):
        Settings.from_env({"CORS_ALLOWED_ORIGINS": origin})

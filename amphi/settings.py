"""One Settings object, read from the environment; every knob has a safe local default."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Any

from amphi.redis_urls import cluster_nodes, is_cluster_url

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-before-production"
DEV_ADMIN_PASSWORD = "admin"


_ORIGIN = re.compile(r"\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


class SettingsError(ValueError):
    """A configuration value is missing, malformed or unsafe for this environment."""


def _int(env: dict[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    app_env: str = "development"
    redis_url: str = "redis://127.0.0.1:6379/0"
    rq_redis_url: str = ""  # empty: the same server as redis_url
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/amphi"
    jwt_secret: str = DEV_JWT_SECRET
    venue_timezone: str = "America/Los_Angeles"
    hold_ttl_seconds: int = 600
    hold_max_quantity: int = 8
    hold_max_active_per_owner: int = 4
    hold_rate_limit_per_minute: int = 30
    sweep_interval_seconds: int = 5
    catalog_refresh_seconds: int = 30
    sections_cache_seconds: int = 1  # per-process cache of the sections endpoint; 0: off
    max_body_bytes: int = 16_384
    redis_max_connections: int = 256
    redis_autopipeline: bool = True  # hot-path scripts of one loop turn in one pipeline
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-For is believed
    log_level: str = "INFO"
    log_format: str = "json"
    stripe_secret_key: str = ""  # empty: demo mode, no real payments
    stripe_publishable_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""  # a Stripe-compatible server (localstripe) for tests
    stripe_timeout_seconds: int = 10  # one Stripe request, connect to last byte
    stripe_max_concurrency: int = 16  # Stripe calls in flight per API process
    smtp_url: str = ""  # empty: confirmation emails go to outbox_dir as .eml files
    email_from: str = "Pacific Amphitheatre <tickets@pacific-amphitheatre.example>"
    outbox_dir: str = "outbox"
    ticket_signing_key: str = ""  # base64 Ed25519 seed; empty: ticket_signing_key_file
    ticket_signing_key_file: str = ".amphi/ticket_signing_key"
    scan_reentry_gates: tuple[str, ...] = ()  # gates where a second admission is allowed
    transfer_close_hours: int = 24  # transfers close this long before the show's day begins
    admin_username: str = "admin"  # the box office admin at /admin
    admin_password: str = DEV_ADMIN_PASSWORD
    admin_login_max_failures: int = 5  # failed admin logins a client may make in a window
    admin_login_window_seconds: int = 900  # ... and how long it is then locked out
    cors_allowed_origins: tuple[str, ...] = ()  # browser origins that may call the API

    @property
    def rq_url(self) -> str:
        return self.rq_redis_url or self.redis_url

    @property
    def demo_mode(self) -> bool:
        return not self.stripe_secret_key

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        d = cls()
        values: dict[str, Any] = {
            "app_env": env.get("APP_ENV", d.app_env),
            "redis_url": env.get("REDIS_URL") or d.redis_url,
            "rq_redis_url": env.get("RQ_REDIS_URL", ""),
            "database_url": env.get("DATABASE_URL") or d.database_url,
            "jwt_secret": env.get("JWT_SECRET") or d.jwt_secret,
            "venue_timezone": env.get("VENUE_TIMEZONE") or d.venue_timezone,
            "hold_ttl_seconds": _int(env, "HOLD_TTL_SECONDS", d.hold_ttl_seconds, minimum=1),
            "hold_max_quantity": _int(env, "HOLD_MAX_QUANTITY", d.hold_max_quantity, minimum=1),
            "hold_max_active_per_owner": _int(
                env, "HOLD_MAX_ACTIVE_PER_OWNER", d.hold_max_active_per_owner, minimum=1
            ),
            "hold_rate_limit_per_minute": _int(
                env, "HOLD_RATE_LIMIT_PER_MINUTE", d.hold_rate_limit_per_minute
            ),
            "sweep_interval_seconds": _int(
                env, "SWEEP_INTERVAL_SECONDS", d.sweep_interval_seconds, minimum=1
            ),
            "catalog_refresh_seconds": _int(
                env, "CATALOG_REFRESH_SECONDS", d.catalog_refresh_seconds, minimum=1
            ),
            "sections_cache_seconds": _int(
                env, "SECTIONS_CACHE_SECONDS", d.sections_cache_seconds
            ),
            "max_body_bytes": _int(env, "MAX_BODY_BYTES", d.max_body_bytes, minimum=256),
            "redis_max_connections": _int(
                env, "REDIS_MAX_CONNECTIONS", d.redis_max_connections, minimum=4
            ),
            "redis_autopipeline": _flag(env, "REDIS_AUTOPIPELINE", d.redis_autopipeline),
            "forwarded_allow_ips": env.get("FORWARDED_ALLOW_IPS") or d.forwarded_allow_ips,
            "log_level": env.get("LOG_LEVEL", d.log_level).upper(),
            "log_format": env.get("LOG_FORMAT", d.log_format).lower(),
            "stripe_secret_key": env.get("STRIPE_SECRET_KEY", ""),
            "stripe_publishable_key": env.get("STRIPE_PUBLISHABLE_KEY", ""),
            "stripe_webhook_secret": env.get("STRIPE_WEBHOOK_SECRET", ""),
            "stripe_api_base": env.get("STRIPE_API_BASE", ""),
            "stripe_timeout_seconds": _int(env, "STRIPE_TIMEOUT_SECONDS",
                                           d.stripe_timeout_seconds, minimum=1),
            "stripe_max_concurrency": _int(env, "STRIPE_MAX_CONCURRENCY",
                                           d.stripe_max_concurrency, minimum=1),
            "smtp_url": env.get("SMTP_URL", ""),
            "email_from": env.get("EMAIL_FROM") or d.email_from,
            "outbox_dir": env.get("OUTBOX_DIR") or d.outbox_dir,
            "ticket_signing_key": env.get("TICKET_SIGNING_KEY", ""),
            "ticket_signing_key_file": env.get("TICKET_SIGNING_KEY_FILE")
            or d.ticket_signing_key_file,
            "scan_reentry_gates": tuple(
                g.strip() for g in env.get("SCAN_REENTRY_GATES", "").split(",") if g.strip()
            ),
            "transfer_close_hours": _int(env, "TRANSFER_CLOSE_HOURS", d.transfer_close_hours),
            "admin_username": env.get("ADMIN_USERNAME") or d.admin_username,
            "admin_password": env.get("ADMIN_PASSWORD") or d.admin_password,
            "admin_login_max_failures": _int(env, "ADMIN_LOGIN_MAX_FAILURES",
                                             d.admin_login_max_failures, minimum=1),
            "admin_login_window_seconds": _int(env, "ADMIN_LOGIN_WINDOW_SECONDS",
                                               d.admin_login_window_seconds, minimum=1),
            "cors_allowed_origins": tuple(
                o.strip().rstrip("/") for o in env.get("CORS_ALLOWED_ORIGINS", "").split(",")
                if o.strip()),
        }
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for origin in self.cors_allowed_origins:
            if not _ORIGIN.fullmatch(origin):
                raise SettingsError(f"CORS_ALLOWED_ORIGINS: {origin!r} is not an origin "
                                    "(scheme://host[:port], no path), nor '*'")
        if self.app_env not in ("development", "test", "production"):
            raise SettingsError("APP_ENV must be development, test or production")
        if self.app_env == "production" and (
            self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret.encode()) < 32
        ):
            raise SettingsError("JWT_SECRET must be a real secret of 32+ bytes in production")
        if self.app_env == "production" and not self.ticket_signing_key:
            raise SettingsError("TICKET_SIGNING_KEY must be set in production")
        if self.app_env == "production" and (
            self.admin_password == DEV_ADMIN_PASSWORD or len(self.admin_password) < 12
        ):
            raise SettingsError("ADMIN_PASSWORD must be a real password of 12+ characters "
                                "in production")
        unknown = set(self.scan_reentry_gates) - {"amphitheater", "festival"}
        if unknown:
            raise SettingsError(f"SCAN_REENTRY_GATES: unknown gates {sorted(unknown)}")
        if self.hold_max_quantity > 8:
            raise SettingsError("HOLD_MAX_QUANTITY may not exceed 8")
        if self.log_format not in ("json", "text"):
            raise SettingsError("LOG_FORMAT must be json or text")
        self._validate_redis_urls()

    def _validate_redis_urls(self) -> None:
        """The hold engine may run on a Redis Cluster; RQ may not (its keys are not
        hash-tagged), so with a cluster REDIS_URL, RQ_REDIS_URL must name a plain Redis."""
        if is_cluster_url(self.rq_redis_url):
            raise SettingsError(
                "RQ_REDIS_URL must be a plain Redis (redis://...), not a Redis Cluster URL: "
                "RQ does not run on a cluster"
            )
        if is_cluster_url(self.redis_url):
            try:
                cluster_nodes(self.redis_url)
            except ValueError as exc:
                raise SettingsError(f"REDIS_URL: {exc}") from exc
            if not self.rq_redis_url:
                raise SettingsError(
                    "REDIS_URL is a Redis Cluster: set RQ_REDIS_URL to a plain Redis "
                    "(redis://...) for the job queues, which do not run on a cluster"
                )

    def replace(self, **changes: Any) -> Settings:
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return Settings(**current)

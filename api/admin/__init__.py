"""The box office admin at /admin (sqladmin): `mount(app, settings)`."""

from api.admin.site import mount

__all__ = ["mount"]

"""A third host, written from scratch against host contract 2.0 the way a team would:
Flask-SQLAlchemy, Flask-WTF's CSRFProtect, Flask-Login, string user ids, roles, UUID /
int / slug record ids with several addresses each, a kind of its own (agency), a
per-team ACL, its own layout, and the add-on under its own URL prefix."""

from tests.hosts.team_host.app import create_team_app

__all__ = ["create_team_app"]

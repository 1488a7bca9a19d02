"""Database URLs and engines.

Users give plain ``postgresql://`` URLs. Our own engine always runs on psycopg 3
(``postgresql+psycopg``); Dagster's storage gets the plain URL, which SQLAlchemy 2.0 maps to
psycopg2 (see pyproject.toml for why). Passwords never reach a log or an error message: use
``redact`` whenever a URL is shown.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

_DRIVER = "postgresql+psycopg"


class DatabaseUrlError(ValueError):
    pass


def parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
        raise DatabaseUrlError(f"not a database URL: {redact(url)!r} ({type(exc).__name__})") from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise DatabaseUrlError(
            f"WS-Tracker needs PostgreSQL; got a {parsed.get_backend_name()!r} URL: {redact(url)}"
        )
    return parsed


def sqlalchemy_url(url: str) -> URL:
    """The URL our engine uses: same server and database, driver psycopg 3."""
    return parse(url).set(drivername=_DRIVER)


def plain_url(url: str) -> str:
    """A ``postgresql://`` URL (driver left to the consumer), password kept."""
    return parse(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    """The same server, another database, as a plain ``postgresql://`` URL."""
    return parse(url).set(drivername="postgresql", database=database).render_as_string(
        hide_password=False
    )


def database_name(url: str) -> str:
    return parse(url).database or "postgres"


def redact(url: str) -> str:
    """The URL with any password replaced by ***; safe for logs and errors."""
    try:
        parsed = make_url(url)
        # An empty password (the embedded server's trust login) is shown as it is.
        return parsed.render_as_string(hide_password=bool(parsed.password))
    except Exception:
        return "<unparseable database URL>"


def make_engine(url: str, **kwargs) -> sa.Engine:
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("future", True)
    return sa.create_engine(sqlalchemy_url(url), **kwargs)


def ensure_database(url: str) -> bool:
    """Create the URL's database if it does not exist (connecting to ``postgres``).

    Returns True when it was created. Needs CREATEDB on real servers; the error says so.
    """
    name = database_name(url)
    admin = make_engine(with_database(url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if exists:
                return False
            quoted = conn.dialect.identifier_preparer.quote(name)
            try:
                conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
            except sa.exc.ProgrammingError as exc:
                raise DatabaseUrlError(
                    f"database {name!r} does not exist on {redact(url)} and could not be created "
                    f"({exc.orig.__class__.__name__}); create it or grant CREATEDB"
                ) from None
            return True
    finally:
        admin.dispose()

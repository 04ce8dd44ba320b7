"""A tuning study on a database server (``--storage postgresql://...``, ``mysql://...``: any RDB URL but SQLite)
is checked before any work starts, one line naming ``--storage`` for each way it can fail.

:func:`miar.study.arguments.check_storage` judges files (SQLite, journal) and whether SQLAlchemy knows the
URL's dialect; a server's URL used to pass that and end in a traceback when Optuna first connected (a closed
port, a host that does not resolve, a driver that is not installed). :func:`check_server` goes further, in the
order that costs least and says most: the URL's host and port are well formed; something listens there (a TCP
connection within :data:`PROBE_TIMEOUT_S`: no driver needed); the dialect's driver imports; and the database
accepts a connection (user, password, database name) within :data:`CONNECT_TIMEOUT_S`. The password never
appears in a message.
"""

from __future__ import annotations

import socket
import threading

from miar.errors import ConfigError

PROBE_TIMEOUT_S = 3  # as for a Dask scheduler: a live server accepts a TCP connection at once
CONNECT_TIMEOUT_S = 15  # a login (TLS, authentication) on a loaded server; a wedged one is one line, not a hang
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}


def _is_server(url: str) -> bool:
    return not url.startswith(("journal:", "sqlite:"))


def _shown(u) -> str:
    return u.render_as_string(hide_password=True)


def check_server(url: str) -> None:
    """Nothing for a file storage; for a server's URL, one :class:`~miar.errors.ConfigError` line if it cannot
    be used (see the module docstring)."""
    if not isinstance(url, str) or not _is_server(url):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    try:
        u = make_url(url)
        dialect = u.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        raise ConfigError(f"--storage {url!r}: not an RDB URL nor journal:FILE ({str(e).splitlines()[0]})") from None
    if u.port is not None and not 0 < u.port < 65536:
        raise ConfigError(f"--storage {_shown(u)}: port {u.port} is not 1-65535")
    if u.host:
        _probe(u)
    try:
        dialect.import_dbapi()
    except ImportError as e:
        raise ConfigError(f"--storage {_shown(u)}: its database driver is not installed ({e}); install it or use "
                          f"the default SQLite storage") from None
    _connect(u)


def _probe(u) -> None:
    """A TCP connection to the server's port (its dialect's default when the URL names none)."""
    port = u.port or DEFAULT_PORTS.get(u.get_backend_name())
    if port is None:
        return
    try:
        socket.create_connection((u.host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        raise ConfigError(f"--storage {_shown(u)}: cannot reach the database server at {u.host}:{port} "
                          f"({why})") from None


def _connect(u) -> None:
    """Open and close one connection, within :data:`CONNECT_TIMEOUT_S` (drivers differ in how a timeout is
    given, so it runs in a daemon thread that is left behind if the server never answers)."""
    from sqlalchemy import create_engine
    box: list[BaseException | None] = []

    def attempt() -> None:
        try:
            engine = create_engine(u, poolclass=_null_pool())
            try:
                engine.connect().close()
            finally:
                engine.dispose()
            box.append(None)
        except Exception as e:  # the driver's own errors: authentication, no such database, ...
            box.append(e)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(CONNECT_TIMEOUT_S)
    if not box:
        raise ConfigError(f"--storage {_shown(u)}: the database server did not accept a connection within "
                          f"{CONNECT_TIMEOUT_S} s")
    if box[0] is not None:
        first = str(getattr(box[0], "orig", None) or box[0]).strip().splitlines()
        raise ConfigError(f"--storage {_shown(u)}: the database refused the connection "
                          f"({first[0] if first else type(box[0]).__name__})")


def _null_pool():
    from sqlalchemy.pool import NullPool
    return NullPool


__all__ = ["check_server"]

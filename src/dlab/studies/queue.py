"""A work queue in any SQLAlchemy database (PostgreSQL across machines, SQLite on one): items
with states, claimed by conditional UPDATEs, kept alive by heartbeats, handed back on Ctrl-C.

One table, `dlab_queue`, keyed by (scope, key): a study's work items (scope
`dlab-study:<name>`, key = the item's key) or a tune search's configs (`dlab-tune:<name>`, key =
the config hash). Every state change is one statement whose WHERE clause states what it
expects, so it is atomic on every database and across machines:

- add: INSERT of the (scope, key) primary key; a concurrent or repeated add of the same key
  violates the key and adds nothing (enqueue once).
- claim: `SET state='running', worker=me WHERE key=… AND state IN (…)`; one row changed = mine.
- beat: `SET heartbeat=now WHERE key=… AND worker=me AND state='running'`, every few seconds.
- reclaim: `SET state='waiting' WHERE state='running' AND heartbeat < now - grace` (a dead
  worker's item is queued again; after `max_lost` losses it fails instead).
- release (Ctrl-C, SIGTERM): `SET state='waiting' WHERE key=… AND worker=me`.
- finish: state 'done' (with the result's status and primary value) or 'failed' (with why).

Times are the database server's clock, so workers' clocks need not agree. States: waiting,
running, done, failed. Imports SQLAlchemy only; no torch, no optuna.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

import sqlalchemy as sa

from dlab.errors import DlabError

WAITING, RUNNING, DONE, FAILED = "waiting", "running", "done", "failed"

_META = sa.MetaData()
ITEMS = sa.Table(
    "dlab_queue", _META,
    sa.Column("scope", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),  # order of adding (the plan's order)
    sa.Column("kind", sa.String(40), nullable=False, default=""),
    sa.Column("source", sa.String(200), nullable=True),  # key this item needs done first
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("worker", sa.String(200), nullable=True),
    sa.Column("heartbeat", sa.Float, nullable=True),  # database clock, seconds
    sa.Column("starts", sa.Integer, nullable=False, default=0),  # claims so far
    sa.Column("lost", sa.Integer, nullable=False, default=0),  # reclaimed from dead workers
    sa.Column("status", sa.String(40), nullable=True),  # result.json status when done
    sa.Column("value", sa.Float, nullable=True),  # the result's primary value when done
    sa.Column("error", sa.Text, nullable=True),
)


def with_driver(url: str) -> str:
    """A PostgreSQL URL without a driver gets psycopg2 (psycopg2-binary, dlab's [postgres] extra):
    SQLAlchemy 2.1 would otherwise pick psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


def safe_url(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':')[0]}:***@{host}" if ":" in cred else url
    return url


def storage_error(url: str, exc: Exception) -> DlabError:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return DlabError(f"cannot open storage {safe_url(url)}: {type(exc).__name__}: {text}")


class Queue:
    """The items of one scope in the database at `url`."""

    def __init__(self, url: str, scope: str):
        self.url, self.scope = url, scope
        full = with_driver(url)
        try:
            args = {"timeout": 60} if full.startswith("sqlite") else {}
            self.engine = sa.create_engine(full, connect_args=args, pool_pre_ping=True)
            for attempt in range(3):  # concurrent first CREATE TABLEs may collide: look again
                try:
                    _META.create_all(self.engine, checkfirst=True)
                    break
                except sa.exc.DBAPIError:
                    if attempt == 2:
                        raise
        except Exception as exc:  # sqlalchemy/driver errors: one line naming the URL
            raise storage_error(url, exc) from None

    def _now(self, conn: sa.Connection) -> float:
        name = self.engine.dialect.name
        if name == "postgresql":
            return float(conn.execute(sa.text("SELECT EXTRACT(EPOCH FROM clock_timestamp())"))
                         .scalar_one())
        if name == "sqlite":
            return float(conn.execute(sa.text("SELECT (julianday('now') - 2440587.5) * 86400.0"))
                         .scalar_one())
        import time

        return time.time()

    def _where(self, key: str):
        return (ITEMS.c.scope == self.scope) & (ITEMS.c.key == key)

    def add(self, key: str, kind: str = "", source: str | None = None) -> bool:
        """Queue `key` unless it is already queued (by anyone, ever); whether this call added it."""
        try:
            with self.engine.begin() as conn:
                seq = conn.execute(sa.select(sa.func.count()).select_from(ITEMS)
                                   .where(ITEMS.c.scope == self.scope)).scalar_one()
                conn.execute(ITEMS.insert().values(
                    scope=self.scope, key=key, seq=seq, kind=kind, source=source, state=WAITING,
                    starts=0, lost=0))
            return True
        except sa.exc.IntegrityError:
            return False

    def rows(self) -> list[dict[str, Any]]:
        """Every item of the scope, in the order added."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(ITEMS).where(ITEMS.c.scope == self.scope)
                                 .order_by(ITEMS.c.seq, ITEMS.c.key)).mappings().all()
        return [dict(r) for r in found]

    def row(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(ITEMS).where(self._where(key))).mappings().first()
        return None if found is None else dict(found)

    def claim(self, key: str, me: str, states: tuple[str, ...] = (WAITING,),
              status: str | None = None) -> bool:
        """Take `key` if it is in one of `states` (and, given `status`, done with that status)."""
        cond = self._where(key) & ITEMS.c.state.in_(states)
        if status is not None:
            cond &= ITEMS.c.status == status
        with self.engine.begin() as conn:
            now = self._now(conn)
            changed = conn.execute(ITEMS.update().where(cond).values(
                state=RUNNING, worker=me, heartbeat=now, starts=ITEMS.c.starts + 1,
                status=None, error=None)).rowcount
        return changed == 1

    def beat(self, key: str, me: str) -> bool:
        """Refresh this worker's heartbeat on `key`; False when it no longer holds it."""
        with self.engine.begin() as conn:
            now = self._now(conn)
            return conn.execute(ITEMS.update().where(
                self._where(key) & (ITEMS.c.worker == me) & (ITEMS.c.state == RUNNING))
                .values(heartbeat=now)).rowcount == 1

    def release(self, key: str, me: str) -> bool:
        """Hand `key` back to the queue (this worker stops); the next claim resumes it."""
        with self.engine.begin() as conn:
            return conn.execute(ITEMS.update().where(
                self._where(key) & (ITEMS.c.worker == me) & (ITEMS.c.state == RUNNING))
                .values(state=WAITING, worker=None, heartbeat=None)).rowcount == 1

    def finish(self, key: str, state: str, *, status: str | None = None,
               value: float | None = None, error: str | None = None,
               expect: tuple[str, ...] = (RUNNING,)) -> bool:
        """Mark `key` done or failed. Not conditional on the worker: a worker that was thought
        dead but finished anyway still records the (idempotent) result."""
        with self.engine.begin() as conn:
            return conn.execute(ITEMS.update().where(
                self._where(key) & ITEMS.c.state.in_(expect)).values(
                state=state, worker=None, heartbeat=None, status=status, value=value,
                error=error)).rowcount == 1

    def reclaim(self, grace_s: float, max_lost: int) -> int:
        """Queue again the items of workers silent for over `grace_s`; fail those lost more
        than `max_lost` times. How many were taken back."""
        with self.engine.begin() as conn:
            cutoff = self._now(conn) - grace_s
            stale = (ITEMS.c.scope == self.scope) & (ITEMS.c.state == RUNNING) & \
                (ITEMS.c.heartbeat < cutoff)
            failed = conn.execute(ITEMS.update().where(stale & (ITEMS.c.lost >= max_lost)).values(
                state=FAILED, worker=None, heartbeat=None, lost=ITEMS.c.lost + 1,
                error=f"its worker stopped sending heartbeats {max_lost + 1} times")).rowcount
            back = conn.execute(ITEMS.update().where(stale).values(
                state=WAITING, worker=None, heartbeat=None, lost=ITEMS.c.lost + 1)).rowcount
        return failed + back

    @contextmanager
    def holding(self, key: str, me: str, every_s: float) -> Iterator[None]:
        """Keep this worker's heartbeat on `key` fresh (a thread) while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every_s):
                try:
                    self.beat(key, me)
                except sa.exc.SQLAlchemyError:  # a lost connection: try again next beat
                    pass

        thread = threading.Thread(target=beat, name=f"heartbeat {key}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

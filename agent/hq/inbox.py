"""Batches COPY'd ahead: the next batch staged in PostgreSQL on a second
connection while the batch before is being merged on the first.

PostgreSQL parsing a batch's JSON into jsonb (the COPY) was a quarter of a
batch's time on the projector's connection, and nothing else could happen
there meanwhile. ``Inbox.post`` COPYs a batch (``staging.Encoded``) into the
table ``inbox`` (unlogged: scratch, emptied by a crash of the server) under
a token of its own, in its own transaction, as soon as the batch is checked;
``Projector.apply`` of the ``Posted`` batch then takes those rows into its
staging table with a plain INSERT, in the batch's transaction, and counts
them: a batch not there whole (an inbox emptied by a restart) fails, and
comes again from the stream. The inbox deletes a batch's rows itself, when
it posts the batch after the next (that one has committed by then).

Only the projector that holds the lock posts and applies; a token is random
per inbox, then counted up, so a projector that lost the lock and still
posts cannot mix its rows into the next one's batches."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from agent.hq.staging import Encoded


@dataclass(frozen=True)
class Posted:
    """A batch COPY'd into ``inbox`` under ``token``."""

    token: int
    batch: Encoded


# the token of the rows being COPY'd: a session setting, read once per row
# by the column's default, so that the COPY's lines need no column more
TOKEN_SETTING = "inv_hq.inbox_token"

# the posted rows into the batch's staging table, counted there: short of
# what was posted, the transaction fails (inbox_short raises)
TAKE = """
WITH taken AS (
    INSERT INTO hq_new (origin, seq, hlc, type, body)
    SELECT origin, seq, hlc, type, body FROM inbox WHERE token = %(token)s
    RETURNING 1
)
SELECT inbox_short(count(*), %(rows)s) FROM taken HAVING count(*) <> %(rows)s
"""


class Inbox:
    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        """``conn``: a connection of its own, in autocommit mode, used from
        one thread at a time (the sink's second one)."""
        if not conn.autocommit:
            raise ValueError("Inbox needs a connection in autocommit mode")
        self.conn = conn
        self._table = sql.Identifier(schema, "inbox")
        self._first = self._next = secrets.randbits(48) << 14

    def clear(self) -> None:
        """Drop what earlier sessions left (posted, never applied): call it
        once the lock is held."""
        self.conn.execute(sql.SQL("DELETE FROM {}").format(self._table))

    def post(self, batch: Encoded) -> Posted:
        self._next += 1
        token = self._next
        with self.conn.transaction():
            # this inbox's batches up to the one before the batch being
            # applied now, which have committed (or failed: they come again)
            self.conn.execute(
                sql.SQL("DELETE FROM {} WHERE token BETWEEN %s AND %s").format(self._table),
                (self._first, token - 2),
            )
            if batch.rows:
                self.conn.execute("SELECT set_config(%s, %s, true)", (TOKEN_SETTING, str(token)))
                copy_sql = sql.SQL("COPY {} (origin, seq, hlc, type, body) FROM STDIN").format(
                    self._table
                )
                with self.conn.cursor().copy(copy_sql) as copy:
                    copy.write(batch.copy)
        return Posted(token, batch)

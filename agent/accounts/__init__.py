"""This store's user accounts: who may log in, and as what.

Accounts are local to a store and never replicated: they live in
``<data_dir>/users.db``, a SQLite file of their own, not in the ledger (whose
tables travel to peers in snapshots and whose events are kept for ever on
every store and at HQ; a password hash put there could never be deleted).

    users       the users.db table: add, passwd, disable, enable, list
    passwords   argon2id hashing, verified off the event loop, a few at a time
    throttle    failed logins per user and per client address: slowed, then refused
    login       ``Accounts``: logins (a JWT bound to the account's generation)
                and the principal of every bearer token
    cli         ``inv-agent user ...``
"""

from __future__ import annotations

from agent.accounts.login import Accounts, Login
from agent.accounts.passwords import Passwords
from agent.accounts.throttle import Throttle, ThrottlePolicy
from agent.accounts.users import AccountError, User, UserStore

__all__ = [
    "AccountError",
    "Accounts",
    "Login",
    "Passwords",
    "Throttle",
    "ThrottlePolicy",
    "User",
    "UserStore",
]

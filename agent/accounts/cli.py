"""``inv-agent user ...``: manage this store's accounts (users.db in the data dir).

Works whether or not the agent runs: the agent sees each change at its next
request. Bad input is exit 2 with one line saying what is wrong; a password
is read from a prompt (twice) or, with ``--password-stdin``, from the first
line of stdin, and never printed. Hashes never leave users.db.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from agent import auth
from agent.accounts.passwords import Passwords
from agent.accounts.users import (
    AccountError,
    User,
    UserStore,
    check_name,
    check_password,
    check_role,
)
from agent.config import ConfigError, load

Prompt = Callable[[str], str]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inv-agent user",
        description="Manage this store's user accounts (they log in with: inv login).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="YAML config file")
    common.add_argument("--data-dir", type=Path, help="the agent's data dir (holds users.db)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", parents=[common], help="add an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, help=f"one of {', '.join(auth.ROLES)}")
    add.add_argument(
        "--store",
        action="append",
        dest="stores",
        metavar="STORE_ID",
        help="limit a clerk to these stores (repeatable; default: every store)",
    )
    for name, what in (
        ("passwd", "set a new password (ends the account's logins)"),
        ("disable", "refuse the account's logins (ends them)"),
        ("enable", "let a disabled account log in again"),
    ):
        cmd = sub.add_parser(name, parents=[common], help=what)
        cmd.add_argument("name")
    for cmd in (add, sub.choices["passwd"]):
        cmd.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from stdin's first line",
        )
    listing = sub.add_parser("list", parents=[common], help="list the accounts (no hashes)")
    listing.add_argument("--json", action="store_true", help="as JSON")
    return p


def read_password(from_stdin: bool, stdin: TextIO, prompt: Prompt) -> str:
    """The new password: stdin's first line, or typed twice at a prompt."""
    if from_stdin:
        line = stdin.readline()
        return check_password(line.removesuffix("\n").removesuffix("\r"))
    if not stdin.isatty():
        raise AccountError("no terminal to ask for the password on: use --password-stdin")
    first = check_password(prompt("Password: "))
    if prompt("Password again: ") != first:
        raise AccountError("the two passwords differ; nothing changed")
    return first


def _describe(user: User) -> str:
    where = f", stores: {', '.join(user.stores)}" if user.stores else ""
    state = "" if user.enabled else ", disabled"
    return f"{user.name} ({user.role}{where}{state})"


def _table(users: list[User], out: TextIO, err: TextIO) -> None:
    if not users:  # a message, not data: stderr
        print("no users yet (add one with: inv-agent user add NAME --role clerk)", file=err)
        return
    rows = [("NAME", "ROLE", "STORES", "ENABLED", "UPDATED")] + [
        (
            u.name,
            u.role,
            ",".join(u.stores) if u.stores else "*",
            "yes" if u.enabled else "no",
            u.updated_at,
        )
        for u in users
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def run(
    args: argparse.Namespace,
    store: UserStore,
    passwords: Passwords,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
    prompt: Prompt,
) -> None:
    """One command on an open users.db; AccountError for bad input."""
    if args.command == "list":
        users = store.all()
        if args.json:
            print(json.dumps([u.public() for u in users], indent=2), file=stdout)
        else:
            _table(users, stdout, stderr)
        return
    name = check_name(args.name)
    if args.command == "add":
        check_role(args.role, args.stores)  # all before asking for a password in vain
        if store.get(name) is not None:
            raise AccountError(f"user {name!r} already exists (change it with: user passwd)")
        user = store.add(
            name, args.role, args.stores, passwords.hash(_password(args, stdin, prompt))
        )
        print(f"added {_describe(user)}", file=stderr)
    elif args.command == "passwd":
        if store.get(name) is None:
            raise AccountError(f"no user {name!r} (see: inv-agent user list)")
        user = store.set_password(name, passwords.hash(_password(args, stdin, prompt)))
        print(f"new password for {_describe(user)}; its logins have ended", file=stderr)
    else:
        user = store.set_enabled(name, args.command == "enable")
        ended = "" if user.enabled else "; its logins have ended"
        print(f"{args.command}d {_describe(user)}{ended}", file=stderr)


def _password(args: argparse.Namespace, stdin: TextIO, prompt: Prompt) -> str:
    return read_password(args.password_stdin, stdin, prompt)


def main(
    argv: list[str],
    *,
    passwords: Passwords | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    prompt: Prompt = getpass.getpass,
    env: dict[str, str] | None = None,
) -> int:
    """``inv-agent user ARGV``; the streams, the hasher and the prompt can be
    given (tests). 0, or 2 with a message for bad input."""
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    try:
        cfg = load(args.config, {"data_dir": args.data_dir}, env=env)
        store = UserStore(cfg.users_path)
    except (ConfigError, AccountError) as exc:
        print(f"inv-agent user: {exc}", file=err)
        return 2
    try:
        run(
            args,
            store,
            passwords or Passwords(),
            stdin or sys.stdin,
            stdout or sys.stdout,
            err,
            prompt,
        )
    except AccountError as exc:
        print(f"inv-agent user {args.command}: {exc}", file=err)
        return 2
    finally:
        store.close()
    return 0

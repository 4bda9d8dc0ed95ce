"""The accounts store and ``inv-agent user`` in process (tmp data dirs, cheap
argon2 parameters), and the login throttle on a clock the test moves."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from agent.accounts import AccountError, Passwords, Throttle, ThrottlePolicy, UserStore
from agent.accounts.cli import main as user_main
from agent.accounts.throttle import Refused

CHEAP = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def user(
    data_dir: Path, *argv: str, stdin: str = "", prompts: list[str] | None = None, code: int = 0
) -> tuple[str, str]:
    """``inv-agent user ARGV --data-dir DATA_DIR``: (stdout, stderr), exit ``code``."""
    out, err = io.StringIO(), io.StringIO()
    answers = iter(prompts or [])
    got = user_main(
        [*argv, "--data-dir", str(data_dir)],
        passwords=CHEAP,
        stdin=Tty(stdin) if prompts is not None else io.StringIO(stdin),
        stdout=out,
        stderr=err,
        prompt=lambda _text: next(answers),
        env={},
    )
    assert got == code, (got, out.getvalue(), err.getvalue())
    if code:
        assert err.getvalue().strip() and not out.getvalue()
    return out.getvalue(), err.getvalue()


def listed(data_dir: Path) -> list[dict[str, Any]]:
    out, _ = user(data_dir, "list", "--json")
    return json.loads(out)  # type: ignore[no-any-return]


def test_add_list_passwd_disable_enable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, said = user(
        data,
        "add",
        "alice",
        "--role",
        "clerk",
        "--store",
        "s-2",
        "--store",
        "s-1",
        "--password-stdin",
        stdin="long enough\n",
    )
    assert said.strip() == "added alice (clerk, stores: s-1, s-2)"
    user(data, "add", "bob.s_1-a", "--role", "admin", prompts=["password!", "password!"])
    [alice, bob] = listed(data)
    assert alice["stores"] == ["s-1", "s-2"] and bob["stores"] is None
    assert (alice["enabled"], alice["generation"]) == (True, 1)
    assert set(alice) == {
        "name",
        "role",
        "stores",
        "enabled",
        "generation",
        "createdAt",
        "updatedAt",
    }
    store = UserStore(data / "users.db")
    found = store.credentials("alice")
    assert found is not None and found[1].startswith("$argon2id$")
    assert CHEAP.hasher.verify(found[1], "long enough")
    user(data, "passwd", "alice", "--password-stdin", stdin="another one\n")
    user(data, "disable", "alice")
    [alice, _] = listed(data)
    assert (alice["enabled"], alice["generation"]) == (False, 3)
    _, said = user(data, "enable", "alice")
    assert said.strip() == "enabled alice (clerk, stores: s-1, s-2)"
    assert listed(data)[0]["generation"] == 4
    table, _ = user(data, "list")
    assert table.splitlines()[0].split() == ["NAME", "ROLE", "STORES", "ENABLED", "UPDATED"]
    assert "$argon2" not in table and "$argon2" not in json.dumps(listed(data))
    assert stat.S_IMODE((data / "users.db").stat().st_mode) == 0o600
    store.close()


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["add", "x", "--role", "boss"], "long enough\n", "role 'boss': must be one of"),
        (["add", "x", "--role", "admin", "--store", "s-1"], "long enough\n", "limits a clerk"),
        (["add", "x", "--role", "clerk", "--store", "a.b"], "long enough\n", "not a store id"),
        (["add", "no spaces", "--role", "clerk"], "long enough\n", "user name 'no spaces'"),
        (["add", "ana@store-2", "--role", "clerk"], "long enough\n", "user name 'ana@store-2'"),
        (["add", "x", "--role", "clerk"], "short\n", "at least 8 characters"),
        (["add", "alice", "--role", "clerk"], "long enough\n", "'alice' already exists"),
        (["passwd", "nobody"], "long enough\n", "no user 'nobody'"),
        (["disable", "nobody"], "", "no user 'nobody'"),
    ],
)
def test_bad_input_is_exit_2_and_changes_nothing(
    tmp_path: Path, argv: list[str], stdin: str, message: str
) -> None:
    data = tmp_path / "data"
    user(data, "add", "alice", "--role", "clerk", "--password-stdin", stdin="long enough\n")
    before = listed(data)
    _, said = (
        user(data, *argv, "--password-stdin", stdin=stdin, code=2)
        if argv[0] in ("add", "passwd")
        else user(data, *argv, code=2)
    )
    assert message in said
    assert listed(data) == before


def test_the_prompt_asks_twice_and_needs_a_terminal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, said = user(data, "add", "x", "--role", "boss", prompts=[], code=2)  # asked nothing
    assert "role 'boss'" in said
    _, said = user(data, "add", "x", "--role", "viewer", prompts=["password1", "password2"], code=2)
    assert "the two passwords differ" in said
    _, said = user(data, "add", "x", "--role", "viewer", code=2)  # stdin is no terminal
    assert "use --password-stdin" in said
    assert listed(data) == []


def test_the_agents_view_sees_each_commit_of_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    agent_side, cli_side = UserStore(path), UserStore(path)
    version = agent_side.version()
    assert agent_side.version() == version  # nothing changed: the same
    cli_side.add("alice", "viewer", None, "hash")
    assert agent_side.version() != version
    assert [u.name for u in agent_side.all()] == ["alice"]
    with pytest.raises(AccountError, match="already exists"):
        cli_side.add("alice", "viewer", None, "hash")
    assert not cli_side.rehash("alice", "not the hash", "new")  # changed meanwhile: kept
    assert cli_side.rehash("alice", "hash", "new")
    assert agent_side.get("alice").generation == 1  # type: ignore[union-attr]
    agent_side.close()
    cli_side.close()


# ------------------------------------------------------------- throttle
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


POLICY = ThrottlePolicy(window=900, slow_after=3, max_per_user=10, max_per_address=30)


def fail(throttle: Throttle, user: str = "alice", address: str = "10.0.0.1") -> float:
    attempt = throttle.begin(user, address)
    throttle.end(attempt, ok=False)
    return attempt.delay


def test_failures_slow_then_refuse_until_the_window_passes() -> None:
    clock = Clock()
    throttle = Throttle(POLICY, clock)
    delays = []
    for _ in range(10):  # one a second
        delays.append(fail(throttle))
        clock.now += 1
    assert delays == [0, 0, 0, 0.25, 0.5, 1, 2, 4, 4, 4]
    clock.now += 60
    with pytest.raises(Refused) as refused:
        throttle.begin("alice", "10.0.0.2")  # another address: the user is locked
    assert (refused.value.retry_after, refused.value.failures) == (830, 10)
    assert refused.value.status == 429
    assert refused.value.headers() == {"Retry-After": "830"}
    clock.now += 830  # the first failure has left the window: one more try
    throttle.end(throttle.begin("alice", "10.0.0.2"), ok=False)
    with pytest.raises(Refused):
        throttle.begin("alice", "10.0.0.3")


def test_an_address_is_refused_after_its_own_limit_and_a_success_clears_only_the_user() -> None:
    throttle = Throttle(POLICY, Clock())
    for i in range(29):
        fail(throttle, f"user-{i}")
    ok = throttle.begin("alice", "10.0.0.1")
    throttle.end(ok, ok=True)  # does not clear the address
    fail(throttle, "bob")
    with pytest.raises(Refused, match="this address"):
        throttle.begin("carol", "10.0.0.1")
    assert throttle.begin("carol", "10.0.0.9").delay == 0


def test_attempts_under_way_count_so_a_burst_cannot_pass_the_limit() -> None:
    throttle = Throttle(POLICY, Clock())
    burst = [throttle.begin("alice", f"10.0.1.{i}") for i in range(10)]
    assert [a.delay for a in burst] == [0, 0, 0, 0.25, 0.5, 1, 2, 4, 4, 4]
    with pytest.raises(Refused) as refused:
        throttle.begin("alice", "10.0.2.1")
    assert refused.value.retry_after == 1  # held by the attempts still running
    for a in burst:
        throttle.end(a, ok=True)
    assert throttle.begin("alice", "10.0.2.1").delay == 0


def test_old_names_are_forgotten() -> None:
    clock = Clock()
    throttle = Throttle(POLICY, clock)
    for i in range(2000):
        fail(throttle, f"guess-{i}", f"10.1.{i // 250}.{i % 250}")
    clock.now += 901
    fail(throttle, "alice")
    assert len(throttle._windows) == 2  # alice and her address

"""AgentClient against a fake transport: the request it builds, the typed
error of each status, and what it retries (only what may be sent twice)."""

from __future__ import annotations

import pytest

from inventory_cli import errors
from inventory_cli.client import AgentClient
from inventory_cli.transport import ConnectFailed, ConnectionBroken, TimedOut, TransportError
from tests.cli_support import FakeAgent


def client(fake: FakeAgent, token: str | None = None) -> AgentClient:
    return AgentClient("/nowhere/agent.sock", token, transport=fake)


def test_the_request_built() -> None:
    fake = FakeAgent().on("POST", "/api/v1/x%20y", {"ok": True})
    got = client(fake, "t0k").request(
        "POST", "/api/v1/x y", body={"k": "v"}, params={"a": None, "flag": True, "n": 2}
    )
    assert got == {"ok": True}
    sent = fake.last
    assert (sent.method, sent.path, sent.query) == (
        "POST",
        "/api/v1/x%20y",
        {"flag": "true", "n": "2"},
    )
    assert sent.body == {"k": "v"}
    assert sent.headers == {"Authorization": "Bearer t0k", "Content-Type": "application/json"}
    assert client(FakeAgent().on("DELETE", "/z", None, status=204)).request("DELETE", "/z") is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, errors.InvalidError),
        (422, errors.InvalidError),
        (401, errors.AuthError),
        (403, errors.AuthError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (503, errors.UnavailableError),
        (500, errors.CliError),
        (429, errors.CliError),
    ],
)
def test_each_status_is_its_error(status: int, kind: type[errors.CliError]) -> None:
    fake = FakeAgent().on("GET", "/x", {"error": "the reason", "field": "f"}, status=status)
    with pytest.raises(errors.CliError) as caught:
        client(fake).get("/x")
    assert type(caught.value) is kind
    assert caught.value.status == status and caught.value.body["field"] == "f"
    assert caught.value.message.startswith("the reason")


def test_an_error_without_json_keeps_its_text() -> None:
    fake = FakeAgent().on("GET", "/x", b"Bad Gateway\n", status=502)
    with pytest.raises(errors.CliError, match=r"^Bad Gateway$"):
        client(fake).get("/x")


def test_a_line_break_in_a_header_is_refused_before_sending() -> None:
    fake = FakeAgent()
    with pytest.raises(errors.UsageError, match="line break"):
        client(fake).request("POST", "/x", headers={"X-Idempotency-Key": "a\r\nEvil: 1"})
    assert fake.sent == []


@pytest.mark.parametrize("failure", [TimedOut("read"), ConnectionBroken("reset")])
def test_a_request_that_may_have_been_applied_is_retried_only_when_safe(
    failure: TransportError,
) -> None:
    fake = FakeAgent(fail=[failure]).on("POST", "/x", {"n": 1})
    with pytest.raises(errors.AgentUnreachableError, match="the request may have been applied"):
        client(fake).request("POST", "/x", body={})
    assert len(fake.sent) == 1
    # a POST is never sent again, even when its caller says it is safe to
    for method in ("POST", "PATCH"):
        fake = FakeAgent(fail=[failure, failure]).on(method, "/x", {"n": 1})
        with pytest.raises(errors.AgentUnreachableError, match="; it may be done: look"):
            client(fake).request(method, "/x", body={}, retry=True, unknown="it may be done: look")
        assert len(fake.sent) == 1
    # an idempotent method is, when asked
    fake = FakeAgent(fail=[failure, failure]).on("DELETE", "/x", None, status=204)
    assert client(fake).request("DELETE", "/x", retry=True) is None
    assert len(fake.sent) == 3
    fake = FakeAgent(fail=[failure] * 3).on("DELETE", "/x", None, status=204)
    with pytest.raises(errors.AgentUnreachableError, match="may have been applied"):
        client(fake).request("DELETE", "/x", retry=True)
    assert len(fake.sent) == 3  # RETRIES in all


def test_a_read_not_answered_says_where_the_agent_is() -> None:
    fake = FakeAgent(fail=[TimedOut("read")])
    with pytest.raises(errors.AgentUnreachableError) as err:
        client(fake).get("/x")
    assert err.value.message == "the agent at /nowhere/agent.sock did not answer in time (read)"


def test_nothing_sent_is_not_retried_and_says_how_to_start_the_agent() -> None:
    fake = FakeAgent(fail=[ConnectFailed("refused"), ConnectFailed("refused")])
    with pytest.raises(errors.AgentUnreachableError, match="no agent is running at /nowhere"):
        client(fake).request("POST", "/x", body={}, retry=True)
    assert len(fake.sent) == 1


def test_paged_stops_at_a_short_page_or_the_limit() -> None:
    fake = FakeAgent().on("GET", "/l", {"data": list(range(1000))}).on("GET", "/l", {"data": [1]})
    assert len(client(fake).paged("/l", 5000)) == 1001
    assert [s.query["page"] for s in fake.sent] == ["1", "2"]

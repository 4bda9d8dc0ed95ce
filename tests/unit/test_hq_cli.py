"""``inv-hq``'s flags, configuration and errors for people (agent/hq/main.py,
agent/hq/config.py), in process with typer's CliRunner: a clear message on
stderr, the documented exit code, no traceback, no secret in a message."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agent.config import ConfigError
from agent.hq.config import load
from agent.hq.main import app
from tests.helpers import free_port
from tests.hqkit import restored_logging  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("restored_logging")

NO_CONFIG = {"INV_HQ_CONFIG": "", "HOME": "/nonexistent", "XDG_CONFIG_HOME": "/nonexistent"}


def hq(*args: str, code: int, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), env={**NO_CONFIG, "INV_HQ_DSN": "", **(env or {})})
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    return result


def test_without_a_dsn_it_says_where_to_give_one() -> None:
    result = hq("status", code=2)
    assert result.stderr.strip() == (
        "inv-hq: no PostgreSQL DSN: give --dsn postgresql://USER@HOST/DB or set INV_HQ_DSN"
    )


def test_a_dsn_that_does_not_parse_is_a_usage_error() -> None:
    result = hq("run", "--dsn", "host=db port", code=2)
    assert result.stderr.startswith("inv-hq: --dsn is not a valid PostgreSQL DSN: ")


def test_postgresql_down_is_said_without_the_password() -> None:
    dsn = f"postgresql://hq:s3cret@127.0.0.1:{free_port()}/chain"
    for command in ("status", "verify", "run"):
        result = hq(command, code=5, env={"INV_HQ_DSN": dsn})
        assert result.stderr.startswith("inv-hq: PostgreSQL not reachable at "), result.stderr
        assert "s3cret" not in result.stderr and "user=hq" in result.stderr


def test_a_bad_schema_name_or_setting_names_it() -> None:
    result = hq("status", "--dsn", "dbname=x", "--schema", "HQ-1", code=2)
    assert "schema: 'HQ-1' is not a plain PostgreSQL name" in result.stderr
    result = hq("run", "--dsn", "dbname=x", "--log-level", "loud", code=2)
    assert result.stderr.strip() == "inv-hq: log_level: must be debug, info, warning or error"


def test_rebuild_without_yes_off_a_terminal_is_refused() -> None:
    result = hq("rebuild", "--dsn", "dbname=x", code=2)
    assert result.stderr.strip() == "inv-hq: rebuild replaces the whole read model: add --yes"


def test_settings_come_from_the_file_then_the_environment_then_the_flags(tmp_path: Path) -> None:
    file = tmp_path / "hq.yaml"
    file.write_text(
        "dsn: dbname=from_file\nschema: chain\nnats:\n  servers: [nats://a:4222]\n"
        "  network: prod\n  creds: /etc/hq.creds\n"
    )
    env = {"INV_HQ_SCHEMA": "from_env", "INV_HQ_NATS_SERVERS": "nats://b:4222,nats://c:4222"}
    cfg = load(file, {"dsn": "dbname=from_flag", "nats": {"network": None}}, env)
    assert (cfg.dsn, cfg.schema, cfg.nats.network) == ("dbname=from_flag", "from_env", "prod")
    assert cfg.nats.servers == ["nats://b:4222", "nats://c:4222"]
    assert cfg.nats.creds == "/etc/hq.creds"
    assert cfg.durable == "hq-prod-from_env"
    file.write_text("dns: dbname=typo\n")
    with pytest.raises(ConfigError, match="unknown setting 'dns'"):
        load(file, env={})


def test_help_lists_the_commands_and_the_exit_codes() -> None:
    result = hq("--help", code=0)
    for word in ("run", "status", "verify", "rebuild", "Exit codes"):
        assert word in result.stdout

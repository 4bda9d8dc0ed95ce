"""inv-hq's configuration: one typed object, loaded once and passed down.

Precedence, lowest first: built-in defaults → YAML file (``--config``, else
``$INV_HQ_CONFIG``, else the platformdirs config path of ``inv-hq`` if it
exists) → ``INV_HQ_*`` environment variables (``INV_HQ_DSN``,
``INV_HQ_NATS_SERVERS``...) → flags. The ``nats`` section is the agent's own
(``agent.config.NatsConfig``): the same servers, credentials, TLS and network
name, so HQ reads the stream the agents write with the same settings.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from agent.config import ConfigError, NatsConfig, apply_settings, read_file

APP = "inv-hq"
ENV_PREFIX = "INV_HQ_"
# a PostgreSQL identifier we write into SQL unquoted-safe (quoted anyway)
SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def default_data_dir() -> Path:
    """Where ``inv-hq run --embedded-postgres`` keeps its PostgreSQL."""
    return Path(platformdirs.user_data_dir(APP))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.yaml"


@dataclass
class HqConfig:
    # libpq connection string or URI; better in $INV_HQ_DSN than on a command line
    dsn: str | None = None
    schema: str = "inv_hq"  # the read model's PostgreSQL schema
    # the durable consumer on the events stream; default hq-<network>-<schema>
    consumer: str | None = None
    fetch_batch: int = 10_000  # messages per fetch, and per PostgreSQL transaction
    lock_poll: float = 2.0  # seconds between tries while another projector holds the lock
    log_level: str = "info"
    log_format: str = "json"
    data_dir: Path = field(default_factory=default_data_dir)
    nats: NatsConfig = field(default_factory=NatsConfig)

    @property
    def durable(self) -> str:
        name = self.consumer or f"hq-{self.nats.network}-{self.schema}"
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _env_values(cfg: HqConfig, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        current = getattr(cfg, f.name)
        key = f"{ENV_PREFIX}{f.name}".upper()
        if dataclasses.is_dataclass(current):
            sub = {
                g.name: env[f"{key}_{g.name}".upper()]
                for g in dataclasses.fields(current)
                if f"{key}_{g.name}".upper() in env
            }
            if sub:
                out[f.name] = sub
        elif key in env:
            out[f.name] = env[key]
    return out


def load(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> HqConfig:
    """The configuration; ``overrides`` (flags) win, None values ignored."""
    cfg = HqConfig()
    env = dict(os.environ) if env is None else env
    file = path or (Path(env["INV_HQ_CONFIG"]) if env.get("INV_HQ_CONFIG") else None)
    if file is None and default_config_path().exists():
        file = default_config_path()
    if file is not None:
        apply_settings(cfg, read_file(file))
    apply_settings(cfg, _env_values(cfg, env))
    if overrides:
        nats = overrides.get("nats") or {}
        flat = {k: v for k, v in overrides.items() if v is not None and k != "nats"}
        apply_settings(cfg, flat)
        apply_settings(cfg.nats, {k: v for k, v in nats.items() if v is not None}, "nats.")
    _check(cfg)
    return cfg


def _check(cfg: HqConfig) -> None:
    if not SCHEMA_RE.match(cfg.schema):
        raise ConfigError(
            f"schema: {cfg.schema!r} is not a plain PostgreSQL name "
            "(lower-case letters, digits and '_', not starting with a digit)"
        )
    if not 1 <= cfg.fetch_batch <= 100_000:
        raise ConfigError("fetch_batch: must be between 1 and 100000")
    if cfg.lock_poll <= 0:
        raise ConfigError("lock_poll: must be a positive number of seconds")
    if cfg.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError("log_level: must be debug, info, warning or error")
    if cfg.log_format not in ("json", "console"):
        raise ConfigError("log_format: must be json or console")

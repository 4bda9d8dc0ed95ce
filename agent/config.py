"""Agent configuration: one typed object, loaded once and passed down.

Precedence, lowest first: built-in defaults (platformdirs paths) → YAML file
(``--config`` or the platformdirs config path) → ``INV_*`` environment
variables → ``inv-agent`` flags. Every key is documented in config.example.yaml.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from agent.domain import ANY_STORE, AlertKind
from agent.paths import default_config_path, default_data_dir, default_socket


class ConfigError(Exception):
    """A setting is wrong; the message names it."""


def redact_url(url: str) -> str:
    """A server URL fit for logs and status: a password or token written into
    it (``nats://user:secret@host``, ``nats://token@host``) is replaced by ***."""
    scheme, sep, rest = url.rpartition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{sep}{user + ':***' if colon else '***'}@{hostpart}"


def webhook_label(url: str) -> str:
    """A webhook's URL as status and logs show it: no credentials, no query
    string or fragment (either may carry a token)."""
    return redact_url(url.split("#", 1)[0].split("?", 1)[0])


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_seconds(value: Any, name: str) -> float:
    """A duration: a number of seconds, or 90s, 30m, 24h, 7d, 2w."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value).strip().lower())
        if not m:
            raise ConfigError(
                f"{name}: {value!r} is not a duration (seconds, or 90s, 30m, 24h, 7d)"
            )
        seconds = float(m.group(1)) * _SECONDS[m.group(2)]
    if not seconds > 0:
        raise ConfigError(f"{name}: must be more than 0 seconds")
    return seconds


ALERT_KINDS = tuple(k.value for k in AlertKind)


@dataclass
class WebhookConfig:
    """One webhook that gets this store's alerts (``alerts.webhooks``)."""

    url: str
    secret: str = field(repr=False)  # the key of each body's HMAC-SHA256 (X-Inventory-Signature)
    events: list[str] = field(default_factory=lambda: list(ALERT_KINDS))
    # how status, metrics and logs name it (default: its URL, without credentials
    # or query string); give one for a URL whose path holds a token (Slack, Teams)
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or webhook_label(self.url)


def _webhook(item: Any, name: str) -> WebhookConfig:
    if not isinstance(item, dict):
        raise ConfigError(f"{name}: expected a mapping with url, secret and events")
    unknown = sorted(set(item) - {"url", "secret", "events", "name"})
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown setting (url, secret, events, name)")
    label = item.get("name")
    if label is not None and not (isinstance(label, str) and 0 < len(label) <= 64):
        raise ConfigError(f"{name}.name: {label!r} must be a text of 1 to 64 characters")
    url = item.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}.url: {url!r} is not an http:// or https:// URL")
    secret = item.get("secret")
    if not isinstance(secret, str) or not secret:
        raise ConfigError(f"{name}.secret: required (the key the bodies are signed with)")
    events = item.get("events")
    if events is None:
        events = list(ALERT_KINDS)
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",") if e.strip()]
    if not isinstance(events, list) or not events or not set(events) <= set(ALERT_KINDS):
        raise ConfigError(f"{name}.events: {events!r} must list {' and/or '.join(ALERT_KINDS)}")
    return WebhookConfig(str(url), secret, [k for k in ALERT_KINDS if k in events], label)


def parse_webhooks(value: Any, name: str) -> list[WebhookConfig]:
    """``alerts.webhooks``: a list of {url, secret, events?}; from the
    environment, the same list as JSON."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError as exc:
            raise ConfigError(f"{name}: not a JSON list of webhooks: {exc}") from exc
    if not isinstance(value, list):
        raise ConfigError(f"{name}: expected a list of webhooks ({{url, secret, events}})")
    hooks = [
        h if isinstance(h, WebhookConfig) else _webhook(h, f"{name}[{i}]")
        for i, h in enumerate(value)
    ]
    for what, seen in (("listed", [h.url for h in hooks]), ("named", [h.label for h in hooks])):
        twice = sorted({u for u in seen if seen.count(u) > 1})
        if twice:  # two targets status and metrics could not tell apart
            raise ConfigError(f"{name}: {webhook_label(twice[0])} is {what} twice")
    return hooks


@dataclass
class AlertsConfig:
    """Delivery of this store's low-stock alerts (``agent.alerts``)."""

    webhooks: list[WebhookConfig] = field(default_factory=list, metadata={"parse": parse_webhooks})
    # seconds an alert is retried for, then given up; YAML and env take 24h, 90m too
    max_age: float = field(default=86_400.0, metadata={"parse": parse_seconds})


@dataclass
class AuthConfig:
    jwt_secret: str | None = None  # None: generated in data_dir/jwt.secret
    token_ttl: str = "24h"
    # a login's lifetime (POST /api/v1/auth/token, inv login): a shift
    login_ttl: float = field(default=43_200.0, metadata={"parse": parse_seconds})
    # failed logins: counted over login_window, per user and per client address;
    # after login_slow_after each attempt waits (growing, up to 4 s), and at
    # login_max_failures (a user) or login_max_failures_per_address it is refused (429)
    login_window: float = field(default=900.0, metadata={"parse": parse_seconds})
    login_slow_after: int = 3
    login_max_failures: int = 10
    login_max_failures_per_address: int = 30


@dataclass
class NatsConfig:
    servers: list[str] = field(default_factory=list)  # empty: standalone
    network: str = "default"  # subject prefix inv.<network>.
    stream: str = "INVENTORY"
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None  # path to a .creds file (nkey + JWT)
    nkey_seed: str | None = None  # path to an nkey seed file
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    follow: list[str] = field(default_factory=list)  # empty: every store
    max_clock_skew: float = 300.0  # seconds
    forward_timeout: float = 2.0  # seconds
    heartbeat_interval: float = 2.0
    ping_interval: float = 2.0
    max_outstanding_pings: int = 2
    reconnect_wait: float = 0.5
    stream_replicas: int = 1
    # seconds the stream keeps an event (its max_age); 0: for ever
    stream_max_age: float = 2_592_000.0
    inbox_prefix: str | None = None  # default _INBOX.<store>
    # the JetStream domain of the hub, for an agent that reaches it through
    # a leaf node without JetStream of its own (its API is then $JS.<domain>.API)
    domain: str | None = None


@dataclass
class LimitsConfig:
    rate_per_minute: int = 1200
    rate_burst: int = 300
    max_body_bytes: int = 64 * 1024 * 1024
    outbox_alert: int = 10_000


@dataclass
class AgentConfig:
    store_id: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    socket: Path = field(default_factory=default_socket)
    listen: str | None = None  # HOST:PORT for TCP (JWT required)
    log_level: str = "info"
    log_format: str = "json"  # json | console
    reservation_ttl: int = 600
    expiry_interval: float = 0.25
    demo_data: bool = False
    clock_offset_ms: int = 0  # drills and tests only: run this agent's clock ahead/behind
    auth: AuthConfig = field(default_factory=AuthConfig)
    nats: NatsConfig = field(default_factory=NatsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.db"

    @property
    def users_path(self) -> Path:
        """This store's accounts (``agent.accounts``): never in the ledger,
        which travels to every peer."""
        return self.data_dir / "users.db"

    def listen_addr(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"listen: expected HOST:PORT, got {self.listen!r}")
        return host or "127.0.0.1", int(port)


def _coerce(value: Any, current: Any, name: str) -> Any:
    """Convert a YAML/env value to the type of the default it replaces."""
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(current, int) and not isinstance(current, bool):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, Path):
            return Path(os.path.expanduser(str(value)))
        if isinstance(current, list):
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {value!r} is not a valid {type(current).__name__}") from exc
    return value if value is None else (str(value) if not isinstance(value, str) else value)


def _apply(obj: Any, values: dict[str, Any], prefix: str) -> None:
    known = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"unknown setting {prefix}{key!r} (see config.example.yaml)")
        current = getattr(obj, name)
        parse = known[name].metadata.get("parse")
        if parse is not None:
            setattr(obj, name, parse(value, prefix + key))
        elif dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key}: expected a mapping")
            _apply(current, value, f"{prefix}{key}.")
        else:
            setattr(obj, name, _coerce(value, current, prefix + key))


def _env_values(cfg: AgentConfig, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        current = getattr(cfg, f.name)
        if dataclasses.is_dataclass(current):
            sub = {
                g.name: env[f"INV_{f.name}_{g.name}".upper()]
                for g in dataclasses.fields(current)
                if f"INV_{f.name}_{g.name}".upper() in env
            }
            if sub:
                out[f.name] = sub
        elif f"INV_{f.name}".upper() in env:
            out[f.name] = env[f"INV_{f.name}".upper()]
    return out


def load(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> AgentConfig:
    cfg = AgentConfig()
    env = dict(os.environ) if env is None else env
    file = path or (Path(env["INV_CONFIG"]) if env.get("INV_CONFIG") else None)
    if file is None and default_config_path().exists():
        file = default_config_path()
    if file is not None:
        _apply(cfg, read_file(file), "")
    _apply(cfg, _env_values(cfg, env), "")
    if overrides:
        _apply(cfg, {k: v for k, v in overrides.items() if v is not None}, "")
    if cfg.store_id is not None and cfg.store_id.lower() == ANY_STORE:
        raise ConfigError(
            f"store_id: {cfg.store_id!r} is reserved: a reservation for store {ANY_STORE!r} is "
            "routed to whichever store can take it; choose another id (e.g. web)"
        )
    if cfg.log_format not in ("json", "console"):
        raise ConfigError("log_format: must be json or console")
    if cfg.reservation_ttl <= 0:
        raise ConfigError("reservation_ttl: must be a positive number of seconds")
    for name in ("login_slow_after", "login_max_failures", "login_max_failures_per_address"):
        if getattr(cfg.auth, name) < 1:
            raise ConfigError(f"auth.{name}: must be at least 1")
    if cfg.nats.stream_max_age < 0:
        raise ConfigError("nats.stream_max_age: must be 0 (for ever) or a number of seconds")
    cfg.listen_addr()
    return cfg


def read_file(file: Path) -> dict[str, Any]:
    """A YAML config file's mapping (an empty file is an empty mapping)."""
    if not file.exists():
        raise ConfigError(f"config file {file} does not exist")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {file}: expected a mapping at the top")
    return data


def apply_settings(obj: Any, values: dict[str, Any], prefix: str = "") -> None:
    """Set a config dataclass's fields from a mapping (a nested dataclass
    from a nested mapping), each value converted to its default's type; an
    unknown key is a ConfigError naming it. inv-hq's config loads this way
    too (``agent.hq.config``)."""
    _apply(obj, values, prefix)

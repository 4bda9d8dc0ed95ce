"""``alerts.webhooks`` and ``alerts.max_age``: read from YAML and from the
environment, every mistake refused naming the setting; what status shows of
a webhook's URL; the signature and the backoff (pure)."""

from __future__ import annotations

import hashlib
import hmac
import random
from pathlib import Path

import pytest

from agent.alerts import encode, sign
from agent.alerts.backoff import ceiling_ms, retry_delay_ms
from agent.config import ConfigError, WebhookConfig, load, webhook_label


def loaded(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load(path, {"store_id": "s-1"}, env=env or {}).alerts


def test_webhooks_and_max_age_from_yaml_and_from_the_environment(tmp_path: Path) -> None:
    alerts = loaded(
        tmp_path,
        "alerts:\n  max_age: 90m\n  webhooks:\n"
        "    - {url: 'https://h.example/x', secret: k1}\n"
        "    - {url: 'http://10.0.0.9:8080/y', secret: k2, events: [restored]}\n",
    )
    [a, b] = alerts.webhooks  # type: ignore[attr-defined]
    assert (a.url, a.secret, a.events) == ("https://h.example/x", "k1", ["low", "restored"])
    assert (b.events, alerts.max_age) == (["restored"], 5400.0)  # type: ignore[attr-defined]
    assert "k1" not in repr(a)  # a secret is never printed
    env = {
        "INV_ALERTS_WEBHOOKS": '[{"url": "https://h.example/z", "secret": "k3"}]',
        "INV_ALERTS_MAX_AGE": "3600",
    }
    alerts = loaded(tmp_path, "", env)
    assert [h.url for h in alerts.webhooks] == ["https://h.example/z"]  # type: ignore[attr-defined]
    assert alerts.max_age == 3600.0  # type: ignore[attr-defined]
    assert loaded(tmp_path, "alerts: {max_age: 2d}").max_age == 172800.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("yaml", "text"),
    [
        ("alerts: {max_age: soon}", "alerts.max_age: 'soon' is not a duration"),
        ("alerts: {max_age: 0}", "alerts.max_age: must be more than 0 seconds"),
        ("alerts: {webhooks: {url: x}}", "alerts.webhooks: expected a list"),
        ("alerts: {webhooks: [{url: 'ftp://h/x', secret: k}]}", "alerts.webhooks[0].url:"),
        ("alerts: {webhooks: [{url: 'https://h/x'}]}", "alerts.webhooks[0].secret: required"),
        (
            "alerts: {webhooks: [{url: 'https://h/x', secret: k, events: [sold]}]}",
            "alerts.webhooks[0].events:",
        ),
        (
            "alerts: {webhooks: [{url: 'https://h/x', secret: k, token: t}]}",
            "alerts.webhooks[0].token: unknown setting",
        ),
        (
            "alerts: {webhooks: [{url: 'https://h/x', secret: a},"
            " {url: 'https://h/x', secret: b}]}",
            "https://h/x is listed twice",
        ),
        (
            "alerts: {webhooks: [{url: 'https://h/x', secret: a, name: ops},"
            " {url: 'https://h/y', secret: b, name: ops}]}",
            "ops is named twice",
        ),
        ("alerts: {webhooks: [{url: 'https://h/x', secret: a, name: ''}]}", ".name: ''"),
        ("alerts: {retries: 3}", "unknown setting alerts.'retries'"),
    ],
)
def test_bad_alert_settings_are_refused_naming_them(tmp_path: Path, yaml: str, text: str) -> None:
    with pytest.raises(ConfigError) as err:
        loaded(tmp_path, yaml)
    assert text in str(err.value)


def test_a_webhook_is_shown_without_credentials_or_query_or_by_its_name() -> None:
    assert webhook_label("https://u:pw@h.example/x?token=t#f") == "https://u:***@h.example/x"
    assert webhook_label("http://h:81/hook") == "http://h:81/hook"
    hook = WebhookConfig("https://hooks.slack.com/services/T0/B0/XYZ", "k", name="ops-slack")
    assert hook.label == "ops-slack"


def test_the_signature_is_an_hmac_of_the_exact_body() -> None:
    body = encode({"id": "s:1", "kind": "low", "sku": "A", "extra": "not sent"})
    assert b"extra" not in body and body.startswith(b'{"after":null,"before":null')
    mac = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign("k", body) == f"sha256={mac}"
    assert sign("other", body) != sign("k", body)


def test_backoff_doubles_to_a_cap_with_full_jitter() -> None:
    assert [ceiling_ms(n) for n in (1, 2, 3, 9, 10, 50)] == [
        1000,
        2000,
        4000,
        256_000,
        300_000,
        300_000,
    ]
    rng = random.Random(3)
    waits = [retry_delay_ms(4, rng) for _ in range(200)]
    assert 0 <= min(waits) < 1000 and 7000 < max(waits) <= 8000  # anywhere up to the ceiling

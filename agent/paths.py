"""Where the agent keeps things by default: its data, its socket, its config.

A leaf module (platformdirs only, no YAML): the CLI imports it to find the
agent's default socket, and every millisecond of ``inv``'s start-up counts.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import platformdirs

APP = "inv-agent"

__all__ = ["APP", "default_config_path", "default_data_dir", "default_socket"]


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP))


def default_socket() -> Path:
    """$XDG_RUNTIME_DIR/inv-agent/agent.sock, or /tmp/runtime-$UID/... without one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime = platformdirs.user_runtime_dir(APP)
    return Path(runtime) / "agent.sock"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.yaml"

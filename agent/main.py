"""``inv-agent``: run one store's agent in the foreground (systemd-friendly),
or ``inv-agent token`` to print a bearer token for the TCP API."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from agent import __version__, auth
from agent.config import AgentConfig, ConfigError, load, redact_url


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inv-agent",
        description="Run one store's inventory agent in the foreground. "
        "Also: 'inv-agent token --help' to make API tokens.",
    )
    p.add_argument("--config", type=Path, help="YAML config file")
    p.add_argument("--store-id", help="this store's id (unique in the network)")
    p.add_argument("--data-dir", type=Path, help="where the ledger and secrets live")
    p.add_argument("--socket", type=Path, help="Unix socket path for the local API")
    p.add_argument("--listen", metavar="HOST:PORT", help="also serve TCP (JWT required)")
    p.add_argument(
        "--nats",
        action="append",
        metavar="URL",
        help="NATS server URL (repeatable); none: standalone",
    )
    p.add_argument(
        "--demo-data",
        action="store_true",
        help="load the seed's 3 products and 4 stock rows where absent",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["json", "console"])
    p.add_argument("--version", action="version", version=f"inv-agent {__version__}")
    return p


def _token_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inv-agent token", description="Print a bearer token (JWT) for the TCP API."
    )
    p.add_argument("--config", type=Path)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--user", required=True)
    p.add_argument("--role", required=True, choices=list(auth.ROLES))
    p.add_argument(
        "--store",
        action="append",
        dest="stores",
        metavar="STORE_ID",
        help="limit a clerk to these stores (repeatable)",
    )
    p.add_argument("--expires", default=None, help="lifetime, e.g. 30m, 24h, 7d")
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "store_id": getattr(args, "store_id", None),
        "data_dir": args.data_dir,
        "socket": getattr(args, "socket", None),
        "listen": getattr(args, "listen", None),
        "log_level": getattr(args, "log_level", None),
        "log_format": getattr(args, "log_format", None),
    }
    if getattr(args, "demo_data", False):
        out["demo_data"] = True
    if getattr(args, "nats", None):
        out["nats"] = {"servers": args.nats}
    return out


def token_main(argv: list[str]) -> int:
    args = _token_parser().parse_args(argv)
    try:
        cfg = load(args.config, _overrides(args))
        expires = auth.parse_duration(args.expires or cfg.auth.token_ttl)
        secret = auth.load_secret(cfg.data_dir, cfg.auth.jwt_secret)
        print(auth.issue(secret, args.user, args.role, expires, args.stores))
    except (ConfigError, ValueError) as exc:
        print(f"inv-agent token: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "token":
        return token_main(argv[1:])
    args = _run_parser().parse_args(argv)
    try:
        cfg = load(args.config, _overrides(args))
    except ConfigError as exc:
        print(f"inv-agent: {exc}", file=sys.stderr)
        return 2
    try:
        return run(cfg)
    except ConfigError as exc:
        print(f"inv-agent: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"inv-agent: {exc.strerror or exc}", file=sys.stderr)
        return 1


def bind_unix_socket(path: Path) -> socket.socket:
    """Owner-only socket (0600) in an owner-only folder; refuses to steal the
    socket of an agent that is still running, removes a stale one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise OSError(
                errno.EADDRINUSE, f"another agent is already serving {path}; stop it first"
            )
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(512)
    sock.setblocking(False)
    return sock


def bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def lock_data_dir(data_dir: Path) -> int:
    """One agent per ledger: hold an exclusive lock on the data dir for the
    life of the process (released by the kernel if it dies)."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(data_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise OSError(
            errno.EBUSY,
            f"another agent is already using {data_dir}; stop it first, or use another --data-dir",
        ) from exc
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def run(cfg: AgentConfig) -> int:
    import structlog
    import uvicorn

    from agent import logs
    from agent.api.peercred import peer_protocol
    from agent.runtime import build

    logs.configure(cfg.log_level, cfg.log_format)
    log = structlog.get_logger("agent")
    lock_data_dir(cfg.data_dir)
    sockets = []
    addr = cfg.listen_addr()
    if addr:
        try:
            sockets.append(bind_tcp(*addr))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {cfg.listen}: {exc.strerror}") from exc
    sockets.insert(0, bind_unix_socket(cfg.socket))
    try:
        agent = build(cfg)
    except BaseException:
        for s in sockets:
            s.close()
        with contextlib.suppress(FileNotFoundError):
            cfg.socket.unlink()
        raise
    server = uvicorn.Server(
        uvicorn.Config(
            agent.app,
            http=peer_protocol(),  # each socket request knows its caller's OS user
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=30,
            server_header=False,
            limit_concurrency=2000,
            backlog=512,
        )
    )
    # Our handlers sit under uvicorn's: after its graceful shutdown uvicorn
    # re-raises the signal, which must end the process cleanly, not kill it.
    stop_signals: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: stop_signals.append(s))
    log.info(
        "agent starting",
        store=agent.service.store_id,
        socket=str(cfg.socket),
        listen=cfg.listen,
        ledger=str(cfg.ledger_path),
        nats=[redact_url(u) for u in cfg.nats.servers] or None,
        version=__version__,
    )
    try:
        server.run(sockets=sockets)
    finally:
        agent.service.close()
        with contextlib.suppress(FileNotFoundError):
            cfg.socket.unlink()
        log.info("agent stopped", store=agent.service.store_id)
    return 0

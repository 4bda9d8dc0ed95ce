"""Who is at the other end of the agent's Unix socket: the kernel says.

The socket is local admin (its file mode is the access control), but "local"
is not a name: the history should say which OS user ran ``inv``. Linux
reports the connecting process's pid, uid and gid for a Unix socket
(SO_PEERCRED, taken when it connected: the caller cannot lie about it).

uvicorn hands an ASGI app no socket, so the agent serves HTTP with uvicorn's
own protocol class, extended by ``connection_made`` to read the peer once
per connection and pass it to the app in each request's scope (``PEER``).
"""

from __future__ import annotations

import functools
import pwd
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope

__all__ = ["PEER", "Peer", "peer_of", "peer_protocol", "scope_peer"]

PEER = "inv.peer"  # the scope key of a socket request's Peer
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int
    user: str  # the uid's login name, or "uid:N" when it has none


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (a container's)
        return f"uid:{uid}"


def peer_of(sock: Any) -> Peer | None:
    """The process at the other end of a Unix socket; None for any other
    socket, or where the system does not say (not Linux)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None or getattr(sock, "family", None) != socket.AF_UNIX:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, _UCRED.size)
    except OSError:
        return None
    pid, uid, gid = _UCRED.unpack(raw)
    return Peer(pid, uid, gid, _user_name(uid))


def scope_peer(scope: Mapping[str, Any]) -> Peer | None:
    peer = scope.get(PEER)
    return peer if isinstance(peer, Peer) else None


async def _with_peer(
    app: ASGI3Application,
    peer: Peer,
    scope: Scope,
    receive: ASGIReceiveCallable,
    send: ASGISendCallable,
) -> None:
    scope[PEER] = peer  # type: ignore[literal-required]  # our key beside ASGI's
    await app(scope, receive, send)


def peer_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, as its "auto"
    picks, else h11) whose connections on a Unix socket carry their Peer."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # httptools (the "speed" extra) not installed
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]

    class PeerAwareProtocol(base):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peer = peer_of(transport.get_extra_info("socket"))
            if peer is not None:
                self.app = functools.partial(_with_peer, self.app, peer)

    return PeerAwareProtocol

"""The socket's caller, named by the kernel (SO_PEERCRED): the OS user that
history shows for a change made over the Unix socket."""

from __future__ import annotations

import os
import pwd
import socket

from agent.api.deps import socket_principal
from agent.api.peercred import PEER, Peer, peer_of, peer_protocol
from agent.auth import LOCAL_ADMIN


def test_a_unix_socket_names_the_process_and_user_at_its_other_end() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        peer = peer_of(left)
    assert peer is not None
    assert (peer.pid, peer.uid, peer.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert peer.user == pwd.getpwuid(os.getuid()).pw_name


def test_a_tcp_socket_or_none_has_no_peer_to_name() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        assert peer_of(tcp) is None
    assert peer_of(None) is None


def test_the_socket_principal_is_the_peer_as_admin_else_local() -> None:
    peer = Peer(pid=1, uid=1000, gid=1000, user="maria")
    who = socket_principal({PEER: peer})
    assert (who.user, who.role, who.stores) == ("maria", "admin", None)
    assert socket_principal({}) == LOCAL_ADMIN  # in process: no socket, no peer


def test_the_protocol_is_uvicorns_own() -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        assert issubclass(peer_protocol(), H11Protocol)
    else:
        assert issubclass(peer_protocol(), HttpToolsProtocol)

"""What deployer needs from smbprotocol beyond its public API, in one place.

smbprotocol's public Connection/Session/TreeConnect/Open API carries every request
deployer sends, except for three needs it has no public answer to:

- **Bounding a hung server** (smbconn's watchdog): `Tcp.close()` takes the send lock that a
  sender blocked on a stopped server's full TCP window holds, so it would wait with it. The
  raw socket is shut down instead (`Tcp._sock`), which wakes the sender (EPIPE) and the
  receiving worker (EOF) at once. A connection whose worker died keeps the exception in
  `Connection._t_exc`; it is checked before the connection is reused.
- **The WRITE fast path** (smbfast): messages built in one buffer and sent with one
  `sendall` need message ids and credits from smbprotocol's own sequence window (under its
  lock), the request registered in its outstanding table so its worker matches the answer,
  and the socket's send lock (`Tcp._sock_lock`) so they never interleave with its messages.
- **Signed tree connects** without required signing (jborean93/smbprotocol#290):
  `TreeConnect.connect()` signs only when the session requires signing, so the session's
  flag is raised around it.

- **Tree connects sent together**: `TreeConnect.connect()` sends its request and waits for
  the answer; the shares of one session (the servers of a site that are one machine) are
  connected with their requests sent at once, the answer taken as connect() takes it
  (send_tree_connect / finish_tree_connect, its steps as smbprotocol 1.13-1.17 has them).

- **Pipelined requests on the wire at once**: TCP_NODELAY on its socket (`Tcp._sock`), which
  smbprotocol leaves to Nagle's algorithm.

It also reads smbprotocol's texts for two failures it raises as plain exceptions (a TCP
connect that failed or timed out, a negotiation that timed out).
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Iterator

from smbprotocol.connection import Connection, Request
from smbprotocol.exceptions import SMBConnectionClosed, SMBException
from smbprotocol.header import Commands, SMB2HeaderRequest
from smbprotocol.open import SMB2WriteRequest
from smbprotocol.connection import Dialects
from smbprotocol.session import Session
from smbprotocol.tree import ShareCapabilities, ShareFlags, SMB2TreeConnectRequest, SMB2TreeConnectResponse, TreeConnect

from . import TestedRange, require

TESTED = TestedRange((1, 13, 0), (1, 18, 0))
VERSION = require("smbprotocol", TESTED, "deployer's SMB transport uses its connection internals")

# Signing algorithms (MS-SMB2 2.2.3.1.7), as smbprotocol chooses among them
HMAC_SHA256, AES_CMAC, AES_GMAC = 0, 1, 2


def usable(conn: Connection) -> bool:
    """Whether this connection has the internals the functions below use."""
    transport = conn.transport
    return (hasattr(transport, "_sock") and hasattr(transport, "_sock_lock") and hasattr(conn, "sequence_lock")
            and hasattr(conn, "sequence_window") and hasattr(conn, "outstanding_requests")
            and hasattr(conn, "_check_worker_running"))


# --- the session ----------------------------------------------------------------------------


def is_guest(session: Session) -> bool:
    """The server let the logon in as its guest (or anonymously): smbprotocol says so only by
    leaving the session without keys (Session.connect, on SMB2_SESSION_FLAG_IS_GUEST/IS_NULL)."""
    return session.session_key is None


def guest_refused(exc: SMBException) -> bool:
    """smbprotocol's refusal of a guest session when signing or encryption is required (a plain SMBException)."""
    return "authenticated as a guest" in str(exc)


# --- the connection's health -----------------------------------------------------------------


def alive(conn: Connection | None) -> bool:
    """Connected, and its receiving worker has not died."""
    return (conn is not None and conn.transport is not None and conn.transport.connected
            and getattr(conn, "_t_exc", None) is None)


def no_delay(conn: Connection) -> None:
    """Send each message at once (TCP_NODELAY): smbprotocol leaves Nagle's algorithm on, which
    holds every pipelined request after the first until the first is acknowledged (a delayed
    ACK: up to 40 ms, and the batch reaches the server in two pieces, two turns over a WAN)."""
    sock = getattr(getattr(conn, "transport", None), "_sock", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def shutdown_socket(conn: Connection | None) -> None:
    """Wake every sender and receiver of the connection at once (see the module docstring)."""
    sock = getattr(getattr(conn, "transport", None), "_sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def is_connect_timeout(exc: BaseException) -> bool:
    """smbprotocol's own deadlines while connecting: the TCP connect's and the negotiation's."""
    if isinstance(exc, ValueError) and isinstance(exc.__cause__, TimeoutError):
        return True
    return type(exc) is SMBException and str(exc).startswith("Connection timeout of ")


def connect_failure(exc: BaseException) -> tuple[BaseException, str] | None:
    """(the socket error, its text) when `exc` is smbprotocol's "Failed to connect" ValueError."""
    if isinstance(exc, ValueError) and str(exc).startswith("Failed to connect"):
        cause = exc.__cause__ or exc
        return cause, str(cause).split("] ")[-1]
    return None


# --- credits -------------------------------------------------------------------------------------


def available_credits(conn: Connection) -> int:
    window = conn.sequence_window
    return window["high"] - window["low"]


def take_message_ids(conn: Connection, charge: int) -> int:
    """Reserve `charge` message ids (credits) from the window, as smbprotocol's own send does."""
    with conn.sequence_lock:
        message_id = conn.sequence_window["low"]
        if conn.sequence_window["high"] - message_id < charge:
            raise SMBException(f"a write needs {charge} credits; the server has granted fewer")
        conn.sequence_window["low"] += charge
    return message_id


# --- raw WRITE requests --------------------------------------------------------------------------


def signing_algorithm(conn: Connection) -> int:
    """The algorithm smbprotocol signs with on this connection (its _generate_signature's choice)."""
    if conn.dialect >= 0x0311 and conn.signing_algorithm_id is not None:
        return int(conn.signing_algorithm_id)
    return AES_CMAC if conn.dialect >= 0x0300 else HMAC_SHA256


def track_write(conn: Connection, *, message_id: int, charge: int, credit_request: int, tree_id: int,
                session_id: int) -> Request:
    """Register a WRITE about to be sent raw, so smbprotocol's worker matches and verifies its answer."""
    header = SMB2HeaderRequest()  # what the worker and receive() read from a request
    header["credit_charge"] = charge
    header["command"] = Commands.SMB2_WRITE
    header["credit_request"] = credit_request
    header["message_id"] = message_id
    header["tree_id"] = tree_id
    header["session_id"] = session_id
    request = Request(header, SMB2WriteRequest, conn, session_id=session_id)
    conn.outstanding_requests[message_id] = request  # before sending: the answer may be quick
    return request


def send_frame(conn: Connection, frame: memoryview) -> None:
    """Send one framed message (Direct TCP length included) under smbprotocol's send lock."""
    conn._check_worker_running()
    transport = conn.transport
    with transport._sock_lock:
        if not transport.connected:  # the worker saw the server go (it closes under this lock)
            raise SMBConnectionClosed("SMB socket was closed, cannot send or receive any more data")
        transport._sock.sendall(frame)


# --- signing -------------------------------------------------------------------------------------


@contextmanager
def signing_forced(session: Session, force: bool) -> Iterator[None]:
    """Sign what `session` sends meanwhile when `force` is true (see the module docstring)."""
    if force:
        session.signing_required = True
    try:
        yield
    finally:
        if force:
            session.signing_required = False


# --- counting what goes over the wire ------------------------------------------------------------


def meter_connection(conn: Connection, meter, server_of) -> None:
    """Count every request the connection sends and every wait for an answer (targets/traffic.py),
    the library's own (session setup, echo, the pipes of SCMR) included: its public send,
    send_compound and receive are wrapped on this one instance."""
    send, send_compound, receive = conn.send, conn.send_compound, conn.receive

    def counted_send(*args, **kw):
        request = send(*args, **kw)
        meter.sent(1, server_of())
        return request

    def counted_compound(messages, *args, **kw):
        requests = send_compound(messages, *args, **kw)
        meter.sent(len(messages), server_of())
        return requests

    def counted_receive(*args, **kw):
        response = receive(*args, **kw)
        meter.answered(server_of())
        return response

    conn.send, conn.send_compound, conn.receive = counted_send, counted_compound, counted_receive


# --- tree connects sent together ------------------------------------------------------------------


def send_tree_connect(tree: TreeConnect) -> Request:
    """TreeConnect.connect()'s request, sent without waiting for its answer: the tree connects of
    the shares one session reaches go out together (one round trip for all) and are finished by
    finish_tree_connect in the order sent. The request is smbprotocol's own."""
    message = SMB2TreeConnectRequest()
    message["buffer"] = tree.share_name.encode("utf-16-le")
    return tree.session.connection.send(message, sid=tree.session.session_id)


def finish_tree_connect(tree: TreeConnect, request: Request) -> None:
    """The rest of TreeConnect.connect() (smbprotocol 1.13-1.17, tree.py): the answer taken (an
    error status raises SMBResponseException, as connect() does), the tree registered with its
    session, its share flags read, and the negotiation verified on SMB 3.0/3.0.2."""
    response = tree.session.connection.receive(request)
    answer = SMB2TreeConnectResponse()
    answer.unpack(response["data"].get_value())
    tree.tree_connect_id = response["tree_id"].get_value()
    tree._connected = True
    tree.session.tree_connect_table[tree.tree_connect_id] = tree
    capabilities = answer["capabilities"]
    tree.is_dfs_share = capabilities.has_flag(ShareCapabilities.SMB2_SHARE_CAP_DFS)
    tree.is_ca_share = capabilities.has_flag(ShareCapabilities.SMB2_SHARE_CAP_CONTINUOUS_AVAILABILITY)
    connection = tree.session.connection
    if connection.dialect >= Dialects.SMB_3_0_0 and connection.supports_encryption:
        tree.encrypt_data = answer["share_flags"].has_flag(ShareFlags.SMB2_SHAREFLAG_ENCRYPT_DATA)
        tree.is_scaleout_share = capabilities.has_flag(ShareCapabilities.SMB2_SHARE_CAP_SCALEOUT)
    tree._verify_dialect_negotiate()  # a no-op past SMB 3.0.2 (3.1.1 checks the negotiation itself)

"""The kernel's side of a flood as the benchmark reads it from /proc."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from loadtests.kernelq import AcceptQueueWatch, accept_queue_length, listen_overflows

NETSTAT = """TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops
TcpExt: 0 0 55515 55600
IpExt: InNoRoutes InTruncatedPkts
IpExt: 0 0
"""

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000029 00:00000000 00000000     0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0
"""


def test_listen_overflows_is_read_from_the_tcpext_table(tmp_path: Path) -> None:
    netstat = tmp_path / "netstat"
    netstat.write_text(NETSTAT)
    assert listen_overflows(netstat) == 55515
    netstat.write_text("IpExt: InNoRoutes\nIpExt: 0\n")
    assert listen_overflows(netstat) is None
    assert listen_overflows(tmp_path / "missing") is None


def test_the_accept_queue_is_the_listening_sockets_receive_queue() -> None:
    assert accept_queue_length(0x1F90, TCP) == 0x29  # port 8080: 41 waiting
    assert accept_queue_length(0x1F91, TCP) == 3
    assert accept_queue_length(0x1F92, TCP) is None  # nobody listens there


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_the_watch_samples_a_real_listeners_queue() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            with AcceptQueueWatch(port=port, period=0.01) as watch:
                deadline = time.monotonic() + 5
                while not watch.samples and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert watch.peak == 2
            assert watch.mean == 2.0
        finally:
            for client in clients:
                client.close()

"""The server layer under load and bad input: real sockets, real clients, short timeouts."""

from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.httpd.conftest import (
    LIMITS,
    Served,
    body_of,
    connect_nonblocking,
    make_server,
    read_to_close,
    recv_until,
    status_of,
    wait_for,
)


def test_ten_clients_make_a_hundred_and_twenty_calls_none_refused(served: Served) -> None:
    def client(n: int) -> list[int]:
        # Each call on a new connection: what stresses accept() and the backlog.
        return [served.call("GET", "/slow")[0] for _ in range(12)]

    with ThreadPoolExecutor(10) as pool:
        statuses = [s for batch in pool.map(client, range(10)) for s in batch]
    assert statuses == [200] * 120
    served.wait_idle()


def test_fifty_connections_wait_in_the_backlog_before_any_is_accepted(tmp_path: Path) -> None:
    """Python's default backlog of 5 refused the sixth client of a burst (EAGAIN)."""
    path = tmp_path / "s.sock"
    app, server = make_server(path)
    socks = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    try:
        socks = [connect_nonblocking(str(path)) for _ in range(50)]  # nothing accepts yet
        thread.start()
        for s in socks:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        replies = [read_to_close(s) for s in socks]
        assert [status_of(r) for r in replies] == [200] * 50
        assert all(r.endswith(b"\r\n\r\npong") for r in replies)
    finally:
        for s in socks:
            s.close()
        server.shutdown()
        thread.join(10)


def test_keep_alive_serves_many_requests_on_one_connection(served: Served) -> None:
    conn = served.client()
    try:
        for i in range(5):
            conn.request("POST", "/items", body=json.dumps({"n": i}).encode())
            resp = conn.getresponse()
            assert (resp.status, json.loads(resp.read())) == (201, {"Id": i})
        conn.request("GET", "/items")
        assert json.loads(conn.getresponse().read()) == [{"n": i} for i in range(5)]
    finally:
        conn.close()
    assert len(served.app.connections) == 1


def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    reply = served.raw(
        b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
        b'POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{"a":1}'
        b"GET /items/0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert reply.count(b"HTTP/1.1 ") == 3
    assert b"HTTP/1.1 201 Created" in reply and reply.endswith(b'{"a": 1}')


def test_unknown_path_is_404_and_wrong_method_405(served: Served) -> None:
    status, body = served.call("GET", "/nope")
    assert (status, json.loads(body)) == (404, {"message": "page not found"})
    status, body = served.call("DELETE", "/items")
    assert (status, json.loads(body)) == (405, {"message": "method not allowed"})


@pytest.mark.parametrize(
    "body, message",
    [
        (b"[" * 10000 + b"]" * 10000, "invalid JSON body: JSON nested deeper than 50 levels"),
        (b'{"a":' * 51 + b"1" + b"}" * 51, "invalid JSON body: JSON nested deeper than 50 levels"),
        (b"{not json", "invalid JSON body: Expecting property name enclosed in double quotes"),
    ],
)
def test_bad_json_is_400_and_creates_nothing(served: Served, body: bytes, message: str) -> None:
    status, reply = served.call("POST", "/items", body)
    assert status == 400
    assert json.loads(reply)["message"].startswith(message)
    assert served.app.items == []


def test_json_as_deep_as_the_limit_is_accepted(served: Served) -> None:
    doc = b'{"a":' * 49 + b'"[[[[[[{{{{{"' + b"}" * 49  # brackets in strings do not nest
    status, _ = served.call("POST", "/items", doc)
    assert status == 201
    assert len(served.app.items) == 1


def test_oversized_body_is_413_and_creates_nothing(served: Served) -> None:
    big = json.dumps({"a": "x" * (1 << 17)}).encode()  # over the 64 KiB default
    status, reply = served.call("POST", "/items", big)
    assert status == 413
    assert json.loads(reply)["message"].startswith("request body too large")
    # Chunked, where the size shows only while reading.
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(big[i : i + 4096]), big[i : i + 4096])
        for i in range(0, len(big), 4096)
    )
    reply_raw = served.raw(
        b"POST /items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked
        + b"0\r\n\r\n"
        + b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status_of(reply_raw) == 413
    assert reply_raw.endswith(b"pong")  # read to its end: the connection went on
    assert served.app.items == []
    # A route with a larger limit takes it.
    status, reply = served.call("POST", "/upload", big)
    assert (status, json.loads(reply)) == (200, {"size": len(big)})


def test_body_declared_far_over_the_limit_is_refused_unread(served: Served) -> None:
    with served.connect() as s:
        s.sendall(b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{")
        reply = read_to_close(s)
    assert status_of(reply) == 413 and b"Connection: close" in reply
    assert served.app.items == []
    served.wait_idle()


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", 431),
        (b"GET /ping HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
        (b"GET /ping\r\n\r\n", 400),
        (b"GET /ping HTTP/2.0\r\n\r\n", 505),
        (b"GET /ping HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        (b"GET /ping HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"POST /items HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST /items HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}", 400),
        (b"POST /items HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST /items HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ],
)
def test_malformed_requests_get_4xx_and_close(
    served: Served, request_bytes: bytes, status: int
) -> None:
    reply = served.raw(request_bytes)
    assert status_of(reply) == status
    assert b"Connection: close" in reply
    assert "message" in body_of(reply)
    assert served.app.items == []
    served.wait_idle()


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # not hex
        b"2\r\n{}XX0\r\n\r\n",  # no CRLF after the data
        b"-2\r\n{}\r\n0\r\n\r\n",
        b"2;" + b"x" * 5000 + b"\r\n{}\r\n0\r\n\r\n",  # a chunk-size line without end
        b"fffffffffffffffffff\r\n",  # a size no one will send
    ],
)
def test_malformed_chunked_body_is_400_and_frees_the_thread(served: Served, chunks: bytes) -> None:
    with served.connect() as s:
        s.sendall(b"POST /items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
        reply = read_to_close(s)  # the server closes: the framing cannot be trusted any more
    assert status_of(reply) == 400
    assert body_of(reply)["message"].startswith("malformed chunked body")
    assert served.app.items == []
    served.wait_idle()


@pytest.mark.parametrize(
    "partial",
    [
        b"GET /ping HTTP/1.1\r\nHost:",  # half a head
        b'POST /items HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"a"',  # half a body
        b"POST /items HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{",  # half a chunk
        b"",  # connected, never sends
        b"GET /ping HTTP/1.1\r\n\r\n",  # a keep-alive connection left idle after a request
    ],
)
def test_stalled_client_is_dropped_after_the_timeout(served: Served, partial: bytes) -> None:
    with served.connect() as s:
        s.sendall(partial)
        reply = read_to_close(s)  # returns when the server closes; the socket waits up to 30 s
    if partial.endswith(b"\r\n\r\n"):
        assert status_of(reply) == 200
    else:
        assert reply == b""  # no answer to half a request, as Go's servers
    assert served.app.items == []
    served.wait_idle()


def test_client_leaving_a_stream_ends_its_thread(served: Served) -> None:
    with served.connect() as s:
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_until(s, b"first")
    served.app.stream_ended.wait(20)
    assert served.app.stream_ended.is_set()
    served.wait_idle()


def test_client_leaving_a_quiet_stream_ends_its_thread(served: Served) -> None:
    """Nothing is written, so no write fails: the producer's empty chunks let the layer see
    that the client has gone."""
    with served.connect() as s:
        s.sendall(b"GET /stream?quiet HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_until(s, b"first")
    served.app.stream_ended.wait(20)
    assert served.app.stream_ended.is_set()
    served.wait_idle()


def test_streams_are_not_cut_by_the_idle_timeout(served: Served) -> None:
    with served.connect() as s:
        s.sendall(b"GET /stream?quiet HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_until(s, b"first")
        # Longer than every timeout of LIMITS: the stream is still open.
        threading.Event().wait(2.5)
        assert not served.app.stream_ended.is_set()
        assert served.server.connections() == 1


def test_expect_100_continue(served: Served) -> None:
    with served.connect() as s:
        s.sendall(
            b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n"
        )
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b'{"a":1}')
        reply = s.recv(4096)
    assert status_of(reply) == 201
    assert served.app.items == [{"a": 1}]


def test_unread_small_body_keeps_the_connection(served: Served) -> None:
    conn = served.client()
    try:
        for _ in range(3):
            conn.request("POST", "/nope", body=b"x" * 10000)
            resp = conn.getresponse()
            assert resp.status == 404
            resp.read()
            conn.request("GET", "/ping")
            assert conn.getresponse().read() == b"pong"
    finally:
        conn.close()
    assert len(served.app.connections) == 1


def test_shutdown_closes_idle_and_streaming_connections(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    app, server = make_server(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    idle = connect_nonblocking(str(path))
    stream = connect_nonblocking(str(path))
    try:
        stream.sendall(b"GET /stream?quiet HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_until(stream, b"first")
        wait_for(lambda: server.connections() == 2)
        server.shutdown()
        thread.join(10)
        assert not thread.is_alive()
        assert read_to_close(idle) == b""
        read_to_close(stream)
        wait_for(lambda: server.connections() == 0)
        assert app.stream_ended.is_set()
        with pytest.raises(OSError):
            connect_nonblocking(str(path))
    finally:
        idle.close()
        stream.close()


def test_tcp_listener(tmp_path: Path) -> None:
    from dockyard.httpd import Server, listen_tcp
    from tests.httpd.conftest import LIMITS, ItemsApp

    server = Server(listen_tcp("127.0.0.1", 0), ItemsApp(), name="test", limits=LIMITS)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")  # 1.0: closes after the reply
            reply = read_to_close(s)
        assert status_of(reply) == 200 and reply.endswith(b"pong")
    finally:
        server.shutdown()
        thread.join(10)


def test_at_the_connection_limit_an_idle_keep_alive_connection_makes_room(
    tmp_path: Path,
) -> None:
    """Clients that keep pools of idle connections (docker-py: up to 10 each) are not refused
    at the limit: the connection idle longest is closed for the newcomer, and the others
    serve on. Only connections that are all in a request (here: streams) leave a newcomer a
    503."""
    path = tmp_path / "s.sock"
    app, server = make_server(path, LIMITS._replace(connections=3, idle_timeout=60.0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served = Served(path, app, server, thread)
    kept = [served.client() for _ in range(3)]
    streams: list[socket.socket] = []
    try:
        for conn in kept:  # three keep-alive connections, idle after one request each
            conn.request("GET", "/ping")
            assert conn.getresponse().read() == b"pong"
        wait_for(lambda: server.parked() == 3)
        assert served.call("GET", "/ping") == (200, b"pong")  # an idle one made room
        assert kept[0].sock is not None and kept[0].sock.recv(1) == b""  # the oldest one
        for conn in kept[1:]:
            conn.request("GET", "/ping")
            assert conn.getresponse().read() == b"pong"
        for conn in kept:
            conn.close()
        served.wait_idle()
        for _ in range(3):  # now three connections in a request that does not end
            s = served.connect()
            s.setblocking(True)
            s.sendall(b"GET /stream?quiet HTTP/1.1\r\nHost: x\r\n\r\n")
            recv_until(s, b"\r\n\r\n")
            streams.append(s)
        wait_for(lambda: server.connections() == 3)
        with served.connect() as s:  # refused at accept: the reply comes before any request
            s.settimeout(30)
            reply = read_to_close(s)
        assert status_of(reply) == 503 and b"too many connections" in reply
    finally:
        for s in streams:
            s.close()
        server.shutdown()
        thread.join(10)


def test_idle_keep_alive_connections_hold_no_thread_and_none_is_closed(tmp_path: Path) -> None:
    """docker-py leaves the connection of every log stream it has read open until its
    garbage collector runs: 50 clients held ~1000. Was: a thread each, and at 1024 the
    server closed idle ones, one of them while its client sent a POST on it (a failed
    ``containers.run``). Now they wait in the poller, and every one still serves."""
    path = tmp_path / "s.sock"
    app, server = make_server(path, LIMITS._replace(idle_timeout=60.0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served = Served(path, app, server, thread)
    clients = [served.client() for _ in range(1100)]
    try:
        for conn in clients:
            conn.request("GET", "/ping")
            assert conn.getresponse().read() == b"pong"
        wait_for(lambda: served.server.parked() == 1100)
        wait_for(lambda: served.server.workers() == 0)  # LIMITS.worker_idle: 1 s
        for conn in clients:  # each of them again, none closed under its client
            conn.request("POST", "/items", body=b"{}")
            assert conn.getresponse().status == 201
    finally:
        for conn in clients:
            conn.close()
        server.shutdown()
        thread.join(10)
    assert len(app.items) == 1100
    assert server.connections() == 0

# r1serve against slow and greedy clients, on the real binary: headers
# trickled a byte at a time (slowloris) from many more connections than the
# server has workers, a body that stalls, connections left idle, a head too
# large to be a request, and one address opening more connections than it
# may. Each must be ended by the server's own deadlines and limits while
# everyone else is served at once.
#
# Environment (set by ctest): R1SERVE_BINARY, R1SERVE_SOURCE_DIR, whose
# tools/python/r1serve_harness.py this imports (this checkout's when it is
# unset).
import os
import resource
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(
    os.environ.get("R1SERVE_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tools", "python"))
from r1serve_harness import Server, fetch, post, serve_args  # noqa: E402

BIN = os.environ.get("R1SERVE_BINARY", "")

# Four workers, short deadlines: the attacks below use ten times as many
# connections as there are workers, and last longer than every deadline.
kWorkers = 4
kHeaderTimeout = 5.0
kRequestTimeout = 4.0
kKeepAlive = 2.0
# How long a normal request may take while the server is under attack: half
# the header deadline (so no attack has been cut off yet when it is
# answered), far above what a tiny-model /tokenize needs on a busy machine.
kServedWithin = 2.5


@pytest.fixture(scope="module")
def server(model_dir):
    s = Server.start(BIN, serve_args(model_dir, [
        "--http-threads", str(kWorkers), "--header-timeout", str(kHeaderTimeout),
        "--request-timeout", str(kRequestTimeout), "--keep-alive-timeout", str(kKeepAlive),
        "--max-connections-per-client", "0"]))
    yield s
    s.stop()


def served_at_once(server):
    """A normal request is answered within kServedWithin seconds."""
    assert server.alive(), server.log()
    started = time.monotonic()
    r = post(server.base, "/tokenize", {"prompt": "still here"}, timeout=10)
    took = time.monotonic() - started
    assert r.status == 200, r.text()
    assert took < kServedWithin, f"a normal request took {took:.2f} s"


def connect(server, timeout=30):
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def read_until_close(sock):
    """Everything the server sends until it closes (a reset counts as a close)."""
    got = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return got
        if not piece:
            return got
        got += piece


def read_response(sock):
    """One whole response framed by Content-Length."""
    got = b""
    while b"\r\n\r\n" not in got:
        piece = sock.recv(65536)
        assert piece, got
        got += piece
    head, _, body = got.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        piece = sock.recv(65536)
        assert piece, got
        body += piece
    assert len(body) == length, (head, body)
    return head + b"\r\n\r\n" + body


class Trickler:
    """`n` connections that send a request head one byte every `interval`
    seconds and never finish it, until the server closes them."""

    def __init__(self, server, n, interval=0.25):
        self.head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
        self.socks = [connect(server) for _ in range(n)]
        self.answers = [b""] * n
        self.closed_after = [None] * n
        self.interval = interval
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        live = set(range(len(self.socks)))
        offset = 0
        while live and offset < len(self.head):
            for i in list(live):
                try:
                    self.socks[i].sendall(self.head[offset:offset + 1])
                except OSError:
                    live.discard(i)
                    self._finish(i)
            offset += 1
            time.sleep(self.interval)
            for i in list(live):
                self.socks[i].setblocking(False)
                try:
                    piece = self.socks[i].recv(65536)
                    self.answers[i] += piece
                    if not piece:
                        live.discard(i)
                        self.closed_after[i] = time.monotonic() - self.started
                except BlockingIOError:
                    pass
                except OSError:
                    live.discard(i)
                    self.closed_after[i] = time.monotonic() - self.started
                finally:
                    self.socks[i].setblocking(True)

    def _finish(self, i):
        self.socks[i].settimeout(5)
        try:
            self.answers[i] += read_until_close(self.socks[i])
        except OSError:
            pass
        self.closed_after[i] = time.monotonic() - self.started

    def join(self, seconds):
        self.thread.join(seconds)
        for s in self.socks:
            s.close()
        return not self.thread.is_alive()


def test_slowloris_holds_no_worker_and_is_cut_off_by_the_header_deadline(server):
    attack = Trickler(server, n=kWorkers * 10)
    # While forty heads trickle in on four workers, everyone else is served.
    served_at_once(server)
    served_at_once(server)
    assert attack.join(kHeaderTimeout + 10), "the slow connections were never closed"
    for answer, after in zip(attack.answers, attack.closed_after):
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert after is not None and after < kHeaderTimeout + 3, after
    served_at_once(server)


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(server):
    socks = [connect(server) for _ in range(kWorkers * 10)]
    served_at_once(server)
    started = time.monotonic()
    for s in socks:
        assert read_until_close(s) == b""
        s.close()
    assert time.monotonic() - started < kHeaderTimeout + 3


def test_a_stalled_body_gets_408_at_the_request_deadline(server):
    stalled = []
    for i in range(kWorkers * 10):
        s = connect(server)
        if i % 2:
            s.sendall(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"prompt\": \"")
        else:
            s.sendall(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"prompt\": \"abcd\r\n")
        stalled.append(s)
    # Their bodies are read by the event loop, not by workers: everyone else
    # is served meanwhile, and the request deadline ends them.
    started = time.monotonic()
    served_at_once(server)
    for s in stalled:
        got = read_until_close(s)
        assert got.startswith(b"HTTP/1.1 408 "), got[:200]
        assert b"did not arrive within" in got, got
        s.close()
    assert time.monotonic() - started < kRequestTimeout + 3
    served_at_once(server)


def test_a_body_trickled_past_the_request_deadline_is_cut_off(server):
    s = connect(server)
    s.sendall(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100000\r\n\r\n{\"prompt\": \"")
    started = time.monotonic()
    got = b""
    s.setblocking(False)
    while time.monotonic() - started < kRequestTimeout + 5:
        try:
            s.send(b"a")
        except OSError:
            break
        time.sleep(0.1)
        try:
            piece = s.recv(65536)
            got += piece
            if not piece:
                break
        except BlockingIOError:
            pass
        except OSError:
            break
    s.close()
    assert got.startswith(b"HTTP/1.1 408 "), got[:200]
    served_at_once(server)


def test_an_idle_keep_alive_connection_is_closed(server):
    s = connect(server)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = read_response(s)
    assert first.startswith(b"HTTP/1.1 200 "), first[:200]
    started = time.monotonic()
    assert read_until_close(s) == b""
    idle = time.monotonic() - started
    assert kKeepAlive - 0.5 < idle < kKeepAlive + 3, idle
    s.close()


def test_keep_alive_and_pipelined_requests_are_served_in_order(server):
    body = b'{"prompt": "abc"}'
    s = connect(server)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s"
              b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
              % (len(body), body))
    got = read_until_close(s)
    s.close()
    assert got.count(b"HTTP/1.1 200 ") == 3, got
    assert got.index(b'"count"') < got.index(b'"tiny"'), got


def test_a_head_too_large_gets_431_without_waiting(server):
    s = connect(server, timeout=kHeaderTimeout / 2)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000)
    got = read_until_close(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 431 "), got[:200]
    served_at_once(server)


def test_one_address_gets_no_more_connections_than_its_limit(model_dir):
    s = Server.start(BIN, serve_args(model_dir, ["--max-connections-per-client", "3"]))
    try:
        # Three connections that each got an answer are held open
        # (keep-alive); one the server has yet to see closed (/ready's
        # polling) may briefly take a place, so a refused one is retried.
        held = []
        deadline = time.monotonic() + 10
        while len(held) < 3:
            c = connect(s, timeout=10)
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = read_response(c)
            except (AssertionError, ConnectionResetError):
                answer = b""
            if answer.startswith(b"HTTP/1.1 200 "):
                held.append(c)
                continue
            assert answer == b"" or answer.startswith(b"HTTP/1.1 429 "), answer[:200]
            c.close()
            assert time.monotonic() < deadline, "three connections were never admitted"
            time.sleep(0.1)
        extra = connect(s, timeout=10)
        got = read_until_close(extra)
        extra.close()
        assert got.startswith(b"HTTP/1.1 429 "), got[:200]
        assert b"Retry-After: 1" in got, got
        # Closing one frees its place.
        held.pop().close()
        deadline = time.monotonic() + 10
        while True:
            try:
                r = fetch(s.base + "/health", timeout=5)
                if r.status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "a freed place was never reused"
            time.sleep(0.1)
        for h in held:
            h.close()
    finally:
        s.stop()


def cpu_seconds(pid):
    """User + system CPU time the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_running_out_of_descriptors_neither_spins_nor_sticks(model_dir):
    # The server inherits a small open-files limit; more clients connect than
    # it has descriptors for.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
    try:
        s = Server.start(BIN, serve_args(model_dir, ["--max-connections-per-client", "0"]))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        held = []
        for _ in range(200):
            c = socket.socket()
            c.settimeout(10)
            c.connect(("127.0.0.1", s.port))  # completes in the backlog even when not accepted
            held.append(c)
        s.wait_stderr(r"out of file descriptors", what="the server to run out of descriptors")
        before = cpu_seconds(s.proc.pid)
        time.sleep(2)
        used = cpu_seconds(s.proc.pid) - before
        assert used < 0.5, f"{used:.2f} s of CPU in 2 s while out of descriptors"
        assert s.alive(), s.log()
        for c in held:
            c.close()
        # The descriptors come back and the server accepts again.
        deadline = time.monotonic() + 15
        while True:
            try:
                if fetch(s.base + "/health", timeout=5).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server never accepted again"
            time.sleep(0.2)
    finally:
        s.stop()


def test_a_slow_client_with_a_real_request_is_served(server):
    # A head and a body trickled in pieces, whole well within both deadlines:
    # served like any other.
    body = b'{"prompt": "a slow but honest client"}'
    request = (b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    s = connect(server)
    started = time.monotonic()
    for i in range(0, len(request), 8):
        s.sendall(request[i:i + 8])
        time.sleep(0.05)
    assert time.monotonic() - started < kHeaderTimeout - 1  # the test itself stayed in time
    got = read_until_close(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 200 "), got[:200]
    assert b'"count"' in got, got

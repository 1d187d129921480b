# r1serve against a hostile client, on the real binary: bodies that nest
# JSON deep enough to exhaust a recursive walk, chunked bodies past
# --max-body-bytes, wrong types where the server once answered 500, a
# method a route does not take, a drain's 503 without Retry-After, and the
# listen backlog. After every attack the server must still answer everyone
# else.
#
# Environment (set by ctest): R1SERVE_BINARY, R1SERVE_SOURCE_DIR, whose
# tools/python/r1serve_harness.py this imports (this checkout's when it is
# unset).
import json
import os
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(
    os.environ.get("R1SERVE_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tools", "python"))
from r1serve_harness import Server, fetch, post, serve_args  # noqa: E402

BIN = os.environ.get("R1SERVE_BINARY", "")

# Deep enough to overflow a recursive copy or dump of the parsed body on an
# 8 MB stack (30,000 levels once survived, 60,000 did not).
kDeepLevels = 100_000


@pytest.fixture(scope="module")
def server(work, model_dir):
    # The in-process response cache and prompts in the audit trail: both once
    # walked a deep body recursively.
    s = Server.start(BIN, serve_args(model_dir, [
        "--response-cache", "memory", "--audit-log", os.path.join(work, "audit.jsonl"),
        "--audit-prompts", "--max-body-bytes", "1048576"]))
    yield s
    s.stop()


def still_serving(server):
    """The server is alive and answers a normal request."""
    assert server.alive(), server.log()
    r = post(server.base, "/tokenize", {"prompt": "still here"})
    assert r.status == 200, r.text()
    assert r.json()["count"] > 0


def deep(levels, leaf="1"):
    return "[" * levels + leaf + "]" * levels


def error_of(r):
    body = r.json()
    assert set(body) == {"error"}, body
    return body["error"]


@pytest.mark.parametrize("route,body", [
    ("/tokenize", '{"messages": ' + deep(kDeepLevels) + "}"),
    ("/v1/chat/completions",
     '{"model": "tiny", "max_tokens": 2, "temperature": 0, "messages": ' + deep(kDeepLevels) + "}"),
    ("/v1/completions", '{"model": "tiny", "max_tokens": 2, "prompt": ' + deep(kDeepLevels) + "}"),
    ("/predict", '{"text": ' + deep(kDeepLevels) + "}"),
    ("/detokenize", '{"tokens": ' + deep(kDeepLevels) + "}"),
    ("/v1/chat/completions", deep(kDeepLevels, '{"a": 1}')),
])
def test_deep_json_is_refused_before_anything_walks_it(server, route, body):
    r = fetch(server.base + route, "POST", body.encode(), {"Content-Type": "application/json"})
    assert r.status == 400, r.text()
    err = error_of(r)
    assert "deep" in err["message"] and "64" in err["message"], err
    still_serving(server)


def test_json_at_the_depth_limit_is_parsed(server):
    # 64 levels: the body object, "messages" (2), then 62 more. A wrong type,
    # but read far enough to say so.
    body = '{"messages": ' + deep(63) + "}"
    r = fetch(server.base + "/tokenize", "POST", body.encode(), {"Content-Type": "application/json"})
    assert r.status == 400, r.text()
    assert "deep" not in error_of(r)["message"]


def chunked_post(server, route, n_bytes, finish, chunk=65536):
    """POSTs about `n_bytes` of a JSON body in chunks of `chunk` bytes, with
    the closing chunk only when `finish`, and returns the status the server
    answers with (None when it closes without answering)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        sock.sendall((f"POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n").encode())
        piece = b'{"prompt": "' + b"a" * (chunk - 12)
        sent = 0
        while sent < n_bytes:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
            piece = b"a" * chunk
        if finish:
            sock.sendall(b'2\r\n"}\r\n0\r\n\r\n')
        head = b""
        while b"\r\n" not in head:
            got = sock.recv(4096)
            if not got:
                break
            head += got
        return int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.") else None
    finally:
        sock.close()


def test_a_chunked_body_past_the_limit_gets_413_without_being_read_whole(server):
    # 256 KB past the 1 MB limit and no closing chunk: a server that reads on
    # to the end of the body waits here instead of answering.
    assert chunked_post(server, "/tokenize", (1 << 20) + (256 << 10), finish=False) == 413
    still_serving(server)


def test_a_chunked_body_within_the_limit_is_served(server):
    assert chunked_post(server, "/tokenize", 200_000, finish=True, chunk=4096) == 200
    still_serving(server)


@pytest.mark.parametrize("body,param", [
    ({"prompt": "hi", "add_special_tokens": "yes"}, "add_special_tokens"),
    ({"prompt": 5}, "prompt"),
    ({"tokens": ["a"]}, "tokens"),
])
def test_wrong_types_are_400_naming_the_field(server, body, param):
    route = "/detokenize" if "tokens" in body else "/tokenize"
    r = post(server.base, route, body)
    assert r.status == 400, r.text()
    assert error_of(r)["param"] == param
    still_serving(server)


@pytest.mark.parametrize("method,route,allow", [
    ("GET", "/v1/chat/completions", "POST"),
    ("DELETE", "/tokenize", "POST"),
    ("POST", "/v1/models", "GET, HEAD"),
    ("PUT", "/health", "GET, HEAD"),
    ("OPTIONS", "/v1/chat/completions", "POST"),
    ("PATCH", "/v1/chat/completions", "POST"),
])
def test_a_method_the_route_does_not_take_is_405(server, method, route, allow):
    r = fetch(server.base + route, method, b"{}" if method != "GET" else None)
    assert r.status == 405, r.text()
    assert r.headers.get("Allow") == allow
    assert error_of(r)["type"] == "invalid_request_error"
    assert fetch(server.base + "/no/such/route").status == 404


def test_the_listen_backlog_is_the_kernels_maximum(server):
    out = subprocess.run(["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    # For a listening socket ss shows the backlog as Send-Q.
    backlog = int(out.stdout.split()[2])
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    assert backlog == somaxconn, out.stdout


def test_a_drained_server_says_when_to_retry(model_dir):
    s = Server.start(BIN, serve_args(model_dir))
    try:
        r = post(s.base, "/admin/drain", {})
        assert r.status == 200, r.text()
        r = post(s.base, "/v1/chat/completions",
                 {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                  "max_tokens": 2})
        assert r.status == 503, r.text()
        assert int(r.headers.get("Retry-After", "0")) > 0, dict(r.headers)
    finally:
        s.stop()


def raw_exchange(server, request, seconds=60):
    """Sends `request` bytes on a fresh connection and reads until the server
    closes it; returns everything it sent."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=seconds)
    try:
        sock.sendall(request)
        got = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                return got
            got += piece
    finally:
        sock.close()


def test_an_http10_stream_is_not_chunked(server):
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 4, "temperature": 0, "stream": True}).encode()
    got = raw_exchange(server, b"POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body))
    head, _, payload = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head
    assert b"transfer-encoding" not in head.lower(), head
    # The events themselves, unframed, up to the end of the stream.
    assert payload.startswith(b"data: {"), payload[:200]
    assert payload.rstrip().endswith(b"data: [DONE]"), payload[-200:]
    still_serving(server)


def test_a_flood_of_header_fields_is_refused(server):
    fields = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 90) for i in range(20_000))
    got = raw_exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields +
                       b"Connection: close\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 431 "), got[:200]
    still_serving(server)


def counter(server, name):
    """The value of an unlabelled-by-route counter of the tiny model."""
    text = fetch(server.base + "/metrics").text()
    for line in text.split("\n"):
        if line.startswith(name + "{") and 'model="tiny"' in line:
            return float(line.split()[-1])
    return 0.0


def test_a_stream_the_client_leaves_still_counts_its_tokens(server):
    messages = [{"role": "user", "content": "Count the tokens of a stream I leave"}]
    n_prompt = post(server.base, "/tokenize", {"messages": messages}).json()["count"]
    prompt_before = counter(server, "r1serve_prompt_tokens_total")
    generated_before = counter(server, "r1serve_generation_tokens_total")
    body = json.dumps({"model": "tiny", "messages": messages, "max_tokens": 2000,
                       "temperature": 0, "stream": True}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    got = b""
    try:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        while got.count(b"data: {") < 5:
            piece = sock.recv(65536)
            assert piece, got
            got += piece
    finally:
        sock.close()
    # At least the prompt and the five tokens seen, and never more than the
    # request allowed.
    server.poll("the left stream's tokens in the counters",
                lambda: counter(server, "r1serve_generation_tokens_total") - generated_before >= 5
                and counter(server, "r1serve_prompt_tokens_total") - prompt_before >= n_prompt)
    assert counter(server, "r1serve_generation_tokens_total") - generated_before <= 2000
    assert counter(server, "r1serve_prompt_tokens_total") - prompt_before == n_prompt
    still_serving(server)


def until_close(server, request, seconds=20):
    """Sends `request` on a keep-alive connection and reads until the server
    closes it; fails when it keeps the connection open past `seconds`."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=seconds)
    try:
        sock.sendall(request)
        got = b""
        while True:
            try:
                piece = sock.recv(65536)
            except socket.timeout:
                pytest.fail(f"the connection stayed open after: {got[:300]!r}")
            except ConnectionResetError:
                return got
            if not piece:
                return got
            got += piece
    finally:
        sock.close()


SMUGGLED = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("head", [
    b"POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",  # 405
    b"POST /no/such/route HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",  # 404
    b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",  # GET with a body
    b"PATCH /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",  # no such method
    b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b"
    b"\r\nContent-Length: %d\r\n\r\n",  # 415
])
def test_a_refused_body_is_never_read_as_the_next_request(server, head):
    got = until_close(server, head % len(SMUGGLED) + SMUGGLED)
    assert got.startswith(b"HTTP/1.1 4"), got[:200]
    # One answer, and the body was not served as a request of its own.
    assert got.count(b"HTTP/1.1 ") == 1, got
    still_serving(server)


def test_a_request_framed_two_ways_is_refused_and_closed(server):
    got = until_close(server, b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
    assert got.startswith(b"HTTP/1.1 400 "), got[:200]
    assert got.count(b"HTTP/1.1 ") == 1, got
    still_serving(server)


def test_a_body_on_an_unrouted_method_or_path_is_not_buffered(server):
    # A chunked body that never ends, sent to what no route takes: the answer
    # comes at once, without waiting for (or keeping) the body.
    for head in (b"PATCH /v1/chat/completions HTTP/1.1\r\n", b"POST /x%0A HTTP/1.1\r\n",
                 b"PRI /tokenize HTTP/1.1\r\n"):
        got = until_close(server, head + b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"10000\r\n" + b"a" * 65536 + b"\r\n")
        assert got.startswith(b"HTTP/1.1 4"), (head, got[:200])
    still_serving(server)


def test_header_fields_are_counted_as_the_client_sent_them(server):
    for n, status in ((98, 200), (101, 431)):  # plus Host and Connection
        fields = b"".join(b"X-F-%d: v\r\n" % i for i in range(n))
        got = raw_exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields +
                           b"Connection: close\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 %d " % status), (n, got[:100])


def test_an_http10_keep_alive_stream_still_ends_with_the_connection(server):
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 4, "temperature": 0, "stream": True}).encode()
    got = until_close(server, b"POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\n"
                      b"Connection: Keep-Alive\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert got.rstrip().endswith(b"data: [DONE]"), got[-200:]

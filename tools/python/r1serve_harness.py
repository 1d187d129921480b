"""What the pytest suites that drive the real r1serve binary share
(tests/e2e/test_openai_server.py, tests/e2e/test_guardrails.py,
tests/e2e/test_resume.py, tests/deploy/test_prometheus.py): HTTP on a fresh connection per request,
polls with deadlines, child processes whose stderr is collected as it comes,
`r1serve serve` on port 0, and a redis-server on a unix socket.

Every wait is a poll with a deadline. One that reaches its deadline, or whose
process exits first, fails the test with what the process wrote on stderr.

Standard library only, and pytest, which runs the suites. The suites import
this file from R1SERVE_SOURCE_DIR/tools/python.
"""

import codecs
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse

import pytest

# Deadlines, in seconds.
HTTP_SECONDS = 120  # one request
START_SECONDS = 120  # each step of a start: model load on a busy two-core machine
POLL_SECONDS = 30  # something a running server does promptly
STOP_SECONDS = 60  # the exit after a signal, a drain included
PROBE_SECONDS = 10  # one /ready request while a server starts

# What `r1serve serve` logs once it listens.
PORT_LINE = re.compile(r"on (https?)://127\.0\.0\.1:(\d+)")


class Response:
    """A finished HTTP exchange: status, headers (case-insensitive), body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


def fetch(url, method="GET", body=None, headers=None, timeout=HTTP_SECONDS, context=None):
    """One request on a fresh connection; never raises on an HTTP status.
    An https URL is fetched with the ssl.SSLContext `context`.

    http.client rather than urllib: no proxy from the environment on loopback.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                           context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read())
    finally:
        conn.close()


def post(base, route, body, headers=None, timeout=HTTP_SECONDS, context=None):
    """POSTs `body` as JSON to base + route."""
    return fetch(f"{base}{route}", "POST", json.dumps(body).encode(),
                 {"Content-Type": "application/json", **(headers or {})}, timeout, context)


def poll(what, ready, seconds, alive=None, log=None, ignore=(), detail=None):
    """Calls ready() until it returns a true value and returns that value.

    Fails when `seconds` pass, or as soon as alive() turns false (the process
    waited on has exited), with detail() and log() in the message. An
    exception from ready() of a type in `ignore` counts as not yet; any other
    propagates.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = ready()
        except ignore:
            value = None
        if value:
            return value
        if alive is not None and not alive():
            why = f"exited while waiting for {what}"
        elif time.monotonic() > deadline:
            why = f"timed out after {seconds} s waiting for {what}"
        else:
            time.sleep(0.05)
            continue
        extra = f" ({detail()})" if detail else ""
        pytest.fail(f"{why}{extra}:\n{log() if log else ''}")


class Process:
    """A child process whose stderr is collected as it comes, on a thread, so
    that the pipe never fills. `env` adds to the inherited environment."""

    def __init__(self, name, argv, env=None):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE,
                                     env={**os.environ, **env} if env else None)
        self._lock = threading.Lock()  # guards _stderr
        self._stderr = ""
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self):
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):
            text = decoder.decode(chunk)
            with self._lock:
                self._stderr += text

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        """Everything the process has written to stderr so far."""
        with self._lock:
            return self._stderr

    def log(self, tail=None):
        """stderr under a heading, for a failure message: up to its end once
        the process has exited, its last `tail` characters where given."""
        if not self.alive():
            self._reader.join(timeout=5)
        text = self.stderr()[-tail:] if tail else self.stderr()
        return f"--- {self.name} (exit {self.proc.poll()}) stderr:\n{text}"

    def fail(self, what):
        pytest.fail(f"{what}:\n{self.log()}")

    def poll(self, what, ready, seconds=POLL_SECONDS, ignore=(), detail=None):
        """poll() that fails as soon as this process exits, with its stderr."""
        return poll(what, ready, seconds, self.alive, self.log, ignore, detail)

    def wait_stderr(self, pattern, seconds=POLL_SECONDS, what=None):
        """Waits until stderr matches `pattern` and returns the match."""
        return self.poll(what or f"stderr to match {pattern!r}",
                         lambda: re.search(pattern, self.stderr()), seconds)

    def wait_exit(self, seconds=STOP_SECONDS):
        """Waits for the exit and the last of stderr; returns the exit status.
        A process still running after `seconds` is killed and fails the test."""
        try:
            rc = self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.fail(f"{self.name} did not exit within {seconds} s")
        self._reader.join(timeout=10)
        return rc

    def stop(self, sig=signal.SIGKILL, seconds=STOP_SECONDS):
        """Sends `sig` unless the process has exited, then wait_exit()."""
        if self.alive():
            self.proc.send_signal(sig)
        return self.wait_exit(seconds)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Server(Process):
    """`r1serve serve` with `args`, which put it on 127.0.0.1 port 0. Once
    wait_ready() returns, port is the one it logged and base its URL."""

    def __init__(self, binary, args, env=None, context=None):
        super().__init__("r1serve", [binary, "serve", *args], env)
        self.port = None
        self.base = None
        self.context = context  # the ssl.SSLContext an HTTPS server is reached with

    @classmethod
    def start(cls, binary, args, env=None, seconds=START_SECONDS, context=None):
        """Starts a server and returns it once /ready answers 200; one that
        does not get there is stopped."""
        s = cls(binary, args, env, context)
        try:
            s.wait_ready(seconds)
        except BaseException:
            s.stop()
            raise
        return s

    def wait_ready(self, seconds=START_SECONDS):
        """Reads the port from stderr, then polls /ready until it answers 200."""
        line = self.wait_stderr(PORT_LINE, seconds, "r1serve to log 'on http://127.0.0.1:PORT'")
        self.port = int(line.group(2))
        self.base = f"{line.group(1)}://127.0.0.1:{self.port}"
        self.poll("r1serve's /ready to answer 200",
                  lambda: fetch(f"{self.base}/ready", timeout=PROBE_SECONDS,
                                context=self.context).status == 200,
                  seconds, ignore=(OSError, http.client.HTTPException))


def serve_args(model_dir, extra=()):
    """The flags the suites serve a model with, then `extra`: port 0, two
    threads, the name "tiny", and a 200 MB KV cache unless `extra` sizes one."""
    kv = [] if "--kv-cache-bytes" in extra else ["--kv-cache-bytes", "200000000"]
    return ["--model", model_dir, "--port", "0", "--served-model-name", "tiny", "--threads", "2",
            *kv, *extra]


def make_test_model(binary, out, seconds=600):
    """Runs `r1serve make-test-model` for the tiny qwen2 model (bf16, seed 5)
    into `out` and returns the finished run; one that does not end within
    `seconds` fails the test."""
    try:
        return subprocess.run([binary, "make-test-model", "--arch", "qwen2", "--size", "tiny",
                               "--dtype", "bf16", "--seed", "5", "--out", out],
                              capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"r1serve make-test-model still running after {seconds} s: {e.stderr}")


class Redis:
    """A redis-server on a unix socket in `dir`, ready once it answers PING;
    url is what r1serve's Redis options take."""

    def __init__(self, dir):
        self.sock = os.path.join(dir, "redis.sock")
        self.url = "unix:" + self.sock
        self.log = os.path.join(dir, "redis.log")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.sock, "--dir", dir,
             "--save", "", "--appendonly", "no", "--logfile", self.log],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def pong():
            r = subprocess.run(["redis-cli", "-s", self.sock, "PING"],
                               capture_output=True, text=True, timeout=10)
            return r.stdout.strip() == "PONG"

        def log():
            if not os.path.exists(self.log):
                return "(no redis.log)"
            with open(self.log) as f:
                return f.read()

        poll("redis-server to answer PING", pong, START_SECONDS,
             lambda: self.proc.poll() is None, log, ignore=(OSError, subprocess.SubprocessError))

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=STOP_SECONDS)

# r1serve over TLS, on the real binary, with certificates made here by the
# openssl command-line tool: the official openai client over HTTPS (whole
# and streamed), TLS 1.2 as the floor and forward-secret AEAD suites only, a
# plain-HTTP client on the TLS port refused without harm, handshakes left
# unfinished ended by the header deadline without holding a worker, the certificate
# reread on SIGHUP, mutual TLS, and files that do not fit refused at start.
#
# Environment (set by ctest): R1SERVE_BINARY, R1SERVE_SOURCE_DIR, whose
# tools/python/r1serve_harness.py this imports (this checkout's when it is
# unset).
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys

import openai
import pytest

sys.path.insert(0, os.path.join(
    os.environ.get("R1SERVE_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tools", "python"))
from r1serve_harness import Server, fetch, poll, serve_args  # noqa: E402

BIN = os.environ.get("R1SERVE_BINARY", "")


def openssl(*args):
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Pki:
    """A CA and certificates it signs, in a folder."""

    def __init__(self, folder, name):
        self.dir = folder
        self.ca_key = os.path.join(folder, f"{name}-ca.key")
        self.ca = os.path.join(folder, f"{name}-ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
                "-subj", f"/CN={name} test CA")

    def issue(self, name, server):
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        cert = os.path.join(self.dir, f"{name}.pem")
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" if server
                    else "extendedKeyUsage=clientAuth\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key


def trusting(ca, client=None):
    """A client context that trusts `ca` (and presents `client`, a (cert,
    key) pair, when given)."""
    ctx = ssl.create_default_context(cafile=ca)
    if client:
        ctx.load_cert_chain(*client)
    return ctx


@pytest.fixture(scope="module")
def pki(work):
    return Pki(work, "server")


@pytest.fixture
def tls_server(work, model_dir, pki):
    """A server on HTTPS with a fresh certificate, and where its files are."""
    cert, key = pki.issue("localhost", server=True)
    live_cert, live_key = os.path.join(work, "live.pem"), os.path.join(work, "live.key")
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    s = Server.start(BIN, serve_args(model_dir, ["--tls-cert", live_cert, "--tls-key", live_key]),
                     context=trusting(pki.ca))
    yield s, live_cert, live_key
    s.stop()


def test_the_official_client_over_https(tls_server, pki):
    s, _, _ = tls_server
    assert s.base.startswith("https://")
    client = openai.OpenAI(base_url=f"{s.base}/v1", api_key="unused", max_retries=0,
                           http_client=openai.DefaultHttpx2Client(verify=trusting(pki.ca)))
    messages = [{"role": "user", "content": "Hello over TLS"}]
    whole = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8,
                                           temperature=0)
    assert whole.usage.completion_tokens == 8
    text = ""
    for chunk in client.chat.completions.create(model="tiny", messages=messages, max_tokens=8,
                                                temperature=0, stream=True):
        for c in chunk.choices:
            text += (getattr(c.delta, "reasoning_content", None) or "") + (c.delta.content or "")
    want = whole.choices[0].message
    assert text == (getattr(want, "reasoning_content", None) or "") + (want.content or "")
    assert [m.id for m in client.models.list().data] == ["tiny"]


def handshake(port, ctx):
    """The negotiated (version, cipher name) of a TLS handshake with `ctx`."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version(), tls.cipher()[0]


def test_tls12_is_the_floor_and_only_forward_secret_aead_suites_are_offered(tls_server, pki):
    s, _, _ = tls_server
    ctx = trusting(pki.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher = handshake(s.port, ctx)
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    # RSA key exchange and CBC suites are refused even when the client offers
    # nothing else.
    weak = trusting(pki.ca)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("ECDHE-ECDSA-AES128-SHA:AES128-GCM-SHA256:AES256-SHA")
    with pytest.raises(ssl.SSLError):
        handshake(s.port, weak)
    # TLS 1.1: refused (or not even offered by this client's OpenSSL).
    old = trusting(pki.ca)
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        handshake(s.port, old)
    assert fetch(f"{s.base}/health", context=trusting(pki.ca)).status == 200


def test_plain_http_on_the_tls_port_fails_cleanly(tls_server, pki):
    s, _, _ = tls_server
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while True:
                piece = raw.recv(4096)
                if not piece:
                    break
                got += piece
        except ConnectionResetError:
            pass
    assert not got.startswith(b"HTTP/"), got[:200]
    # Nobody else noticed.
    assert s.alive(), s.log()
    assert fetch(f"{s.base}/health", context=trusting(pki.ca)).status == 200


def test_clients_that_never_finish_the_handshake_hold_no_worker(work, model_dir, pki):
    cert, key = pki.issue("slow-handshakes", server=True)
    s = Server.start(BIN, serve_args(model_dir, [
        "--tls-cert", cert, "--tls-key", key, "--http-threads", "2", "--header-timeout", "2"]),
        context=trusting(pki.ca))
    try:
        # Ten times as many connections as workers: silent ones, and ones
        # that stop inside their ClientHello record.
        stuck = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(20)]
        for c in stuck[10:]:
            c.sendall(b"\x16\x03\x01\x02\x00\x01")
        for _ in range(3):
            assert fetch(f"{s.base}/health", context=trusting(pki.ca), timeout=5).status == 200
        # The header deadline ends them all.
        for c in stuck:
            try:
                assert c.recv(4096) == b""
            except ConnectionResetError:
                pass
            c.close()
        assert fetch(f"{s.base}/health", context=trusting(pki.ca), timeout=5).status == 200
    finally:
        s.stop()


def served_certificate(port, ca):
    ctx = trusting(ca)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)


def test_sighup_rereads_the_certificate(tls_server, pki, work):
    s, live_cert, live_key = tls_server
    before = served_certificate(s.port, pki.ca)
    cert, key = pki.issue("renewed", server=True)
    # A broken pair first: the old certificate keeps serving.
    shutil.copy(cert, live_cert)
    s.proc.send_signal(signal.SIGHUP)
    s.wait_stderr(r"keeping the previous TLS certificate")
    assert served_certificate(s.port, pki.ca) == before
    shutil.copy(key, live_key)
    s.proc.send_signal(signal.SIGHUP)
    s.wait_stderr(r"reloaded the TLS certificate")
    with open(cert) as f:
        want = ssl.PEM_cert_to_DER_cert(f.read())
    poll("the renewed certificate to be served", lambda: served_certificate(s.port, pki.ca) == want,
         30, s.alive, s.log)


def test_mutual_tls_requires_a_client_certificate_from_the_ca(work, model_dir, pki):
    clients = Pki(work, "clients")
    strangers = Pki(work, "strangers")
    cert, key = pki.issue("mtls-server", server=True)
    good = clients.issue("alice", server=False)
    bad = strangers.issue("mallory", server=False)
    s = Server.start(BIN, serve_args(model_dir, ["--tls-cert", cert, "--tls-key", key,
                                                 "--tls-client-ca", clients.ca]),
                     context=trusting(pki.ca, good))
    try:
        assert fetch(f"{s.base}/health", context=trusting(pki.ca, good)).status == 200
        # A client that offers to resume its last session (as nginx, Envoy
        # and Java do) gets a full handshake, not a failed one.
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = trusting(pki.ca, good)
            ctx.maximum_version = version
            session = None
            for _ in range(2):
                with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
                    with ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                                         session=session) as tls:
                        tls.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n"
                                    b"Connection: close\r\n\r\n")
                        assert tls.recv(4096).startswith(b"HTTP/1.1 200 "), version
                        session = tls.session
        for ctx in (trusting(pki.ca), trusting(pki.ca, bad)):
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                r = fetch(f"{s.base}/health", context=ctx)
                # TLS 1.3 reports the refusal on the first read.
                pytest.fail(f"answered {r.status} without a valid client certificate")
        assert s.alive(), s.log()
    finally:
        s.stop()


@pytest.mark.parametrize("case", ["mismatched key", "missing key", "not a certificate"])
def test_tls_files_that_do_not_fit_are_refused_at_start(work, model_dir, pki, case):
    cert, key = pki.issue("start", server=True)
    _, other_key = pki.issue("other", server=True)
    args = {"mismatched key": ["--tls-cert", cert, "--tls-key", other_key],
            "missing key": ["--tls-cert", cert],
            "not a certificate": ["--tls-cert", key, "--tls-key", key]}[case]
    done = subprocess.run([BIN, "serve", *serve_args(model_dir, args)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "tls" in done.stderr.lower() or ".key" in done.stderr or ".pem" in done.stderr, \
        done.stderr

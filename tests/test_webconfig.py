"""The --web.config.file support: parsing like promtool, TLS, client certificates, basic auth.

Servers run on 127.0.0.1 with certificates made by trustme; clients are requests and the ssl
module, so every claim is about a real handshake and a real HTTP exchange.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import bcrypt
import pytest
import requests
import trustme

from exporter.logs import LogfmtFormatter
from exporter.web import auth
from exporter.web.auth import WWW_AUTHENTICATE
from exporter.web.config import WebConfig, WebConfigError, load_web_config
from exporter.web.httpserver import TLSThreadingHTTPServer
from exporter.web.ratelimit import RateLimit, TokenBucket
from exporter.web.settings import WebHolder
from exporter.web.tls import client_sans

from .support import write_config
from .tools import require_tool

DATA = Path(__file__).parent / "data" / "webconfig"
VALID = sorted((DATA / "valid").glob("*.yml"))
INVALID = sorted((DATA / "invalid").glob("*.yml"))

# The users of the files in tests/data/webconfig/valid (cost 4 keeps the tests fast).
PROMETHEUS_HASH = "$2y$04$Ez8YO8hcsiuKyGXFAX64f.g.sIndll9sIOVMf5B8.Oiy7/eQWL/4e"
PROMETHEUS_PASSWORD = "scrape-me"


@dataclass(frozen=True)
class PKI:
    dir: Path
    ca: Path  # the CA of the server certificate and of the trusted client certificate
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # a client certificate from a CA the server does not trust
    rogue_key: Path
    other_key: Path  # a private key that matches no certificate here


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("prometheus.example")
    rogue = trustme.CA().issue_cert("prometheus.example")
    unrelated = trustme.CA().issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    server.cert_chain_pems[0].write_to_path(str(d / "server.pem"))
    server.private_key_pem.write_to_path(str(d / "server.key"))
    client.cert_chain_pems[0].write_to_path(str(d / "client.pem"))
    client.private_key_pem.write_to_path(str(d / "client.key"))
    rogue.cert_chain_pems[0].write_to_path(str(d / "rogue.pem"))
    rogue.private_key_pem.write_to_path(str(d / "rogue.key"))
    unrelated.private_key_pem.write_to_path(str(d / "other.key"))
    return PKI(
        dir=d,
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        rogue_cert=d / "rogue.pem",
        rogue_key=d / "rogue.key",
        other_key=d / "other.key",
    )


@pytest.fixture
def workdir(tmp_path: Path, pki: PKI) -> Path:
    """A directory holding the certificates under the names the data files use."""
    for name in ("ca.pem", "server.pem", "server.key", "other.key"):
        shutil.copy(pki.dir / name, tmp_path / name)
    (tmp_path / "certs").mkdir()
    return tmp_path


_INLINE = re.compile(r"^( *)\{\{([a-z.]+)\}\}$", re.MULTILINE)


def place(source: Path, workdir: Path) -> Path:
    """Copy a data file into workdir, each ``{{name}}`` line replaced by the PEM text of the
    file of that name there, indented as the placeholder (for the inline keys)."""

    def pem(match: re.Match[str]) -> str:
        indent, name = match.groups()
        lines = (workdir / name).read_text(encoding="utf-8").strip().splitlines()
        return "\n".join(indent + line for line in lines)

    path = workdir / source.name
    path.write_text(_INLINE.sub(pem, source.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def newer_toolkit_keys(source: Path) -> list[str]:
    """The keys named by a ``# newer-toolkit: <key>...`` line: the file uses keys that came
    with an exporter-toolkit newer than the one some promtool builds (Debian's 2.42) hold."""
    for line in source.read_text(encoding="utf-8").splitlines()[:3]:
        if line.startswith("# newer-toolkit: "):
            return line.removeprefix("# newer-toolkit: ").split()
    return []


def tls_config(pki: PKI, extra: str = "", users: str = "") -> str:
    text = f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
    text += "".join(f"  {line}\n" for line in extra.splitlines())
    if users:
        text += "basic_auth_users:\n" + "".join(f"  {line}\n" for line in users.splitlines())
    return text


class Handler(BaseHTTPRequestHandler):
    """A minimal handler that applies the web config as the exporter's server does."""

    server: ServerForTests

    def do_GET(self) -> None:
        config = self.server.web_config
        if not config.authenticate(self.headers.get("Authorization")):
            body = b"Unauthorized\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", WWW_AUTHENTICATE)
        else:
            body = b"ok\n"
            self.send_response(200)
        for name, value in config.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class ServerForTests(TLSThreadingHTTPServer):
    web_config: WebConfig


@contextlib.contextmanager
def serving(config: WebConfig, handshake_timeout: float = 30.0) -> Iterator[ServerForTests]:
    server = ServerForTests(
        ("127.0.0.1", 0),
        Handler,
        web=WebHolder(config),
        handshake_timeout=handshake_timeout,
    )
    server.web_config = config
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def url(server: ServerForTests, scheme: str = "https") -> str:
    return f"{scheme}://127.0.0.1:{server.server_address[1]}/metrics"


def basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode("ascii")


def logged(record: logging.LogRecord) -> tuple[str, dict[str, object]]:
    """A log record's message and the structured fields it carries."""
    standard = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
    fields = {k: v for k, v in vars(record).items() if k not in standard}
    return record.getMessage(), fields


def client_context(pki: PKI, **kwargs: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    for name, value in kwargs.items():
        setattr(context, name, value)
    return context


# --- files: the same verdict as promtool ------------------------------------------------


def expected_error(source: Path, path: Path) -> str:
    """The error written on the first line of an invalid data file, for its copy at path."""
    first_line = source.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# expect: ")
    return (
        first_line.removeprefix("# expect: ")
        .replace("<path>", str(path))
        .replace("<dir>/", f"{path.parent}{os.sep}")
    )


@pytest.mark.parametrize("source", VALID, ids=lambda p: p.stem)
def test_valid_files_load(source: Path, workdir: Path) -> None:
    load_web_config(str(place(source, workdir)))


@pytest.mark.parametrize("source", INVALID, ids=lambda p: p.stem)
def test_invalid_files_are_refused_with_a_clear_error(source: Path, workdir: Path) -> None:
    path = place(source, workdir)
    with pytest.raises(WebConfigError) as err:
        load_web_config(str(path))
    assert str(err.value) == expected_error(source, path)


@pytest.mark.prometheus
@pytest.mark.parametrize("source", VALID + INVALID, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_promtool_gives_the_same_verdict(source: Path, workdir: Path) -> None:
    promtool = require_tool("promtool")
    path = place(source, workdir)
    check = subprocess.run(
        [promtool, "check", "web-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = check.stdout + check.stderr
    newer_keys = newer_toolkit_keys(source)
    if source.parent.name == "valid" and newer_keys and check.returncode == 1:
        # A known difference, not a hidden one: promtool built on an older exporter-toolkit
        # (Debian's Prometheus 2.42 is one) refuses every key that came later, and only for
        # that reason. A promtool with a newer toolkit accepts the file, as this exporter does.
        keys = "|".join(newer_keys)
        assert re.fullmatch(
            rf"{re.escape(str(path))} FAILED: yaml: unmarshal errors:\n"
            rf"(  line \d+: field ({keys}) not found in type web\.\w+\n)+",
            output,
        ), output
    elif source.parent.name == "valid":
        assert check.returncode == 0, output
        assert output == f"{path} SUCCESS\n"
    else:
        assert check.returncode == 1, output
        assert output.startswith(f"{path} FAILED: ")


def test_valid_files_set_what_they_say(workdir: Path) -> None:
    for name in ("tls.yml", "tls-every-key.yml", "client-auth-RequestClientCert.yml"):
        shutil.copy(DATA / "valid" / name, workdir / name)
    assert load_web_config(str(workdir / "tls.yml")).ssl_context() is not None

    every = load_web_config(str(workdir / "tls-every-key.yml")).ssl_context()
    assert every is not None
    assert every.verify_mode == ssl.CERT_REQUIRED
    assert every.minimum_version == ssl.TLSVersion.TLSv1_2
    assert every.maximum_version == ssl.TLSVersion.TLSv1_3
    assert not every.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12_ciphers = sorted(c["name"] for c in every.get_ciphers() if c["protocol"] == "TLSv1.2")
    assert tls12_ciphers == [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ]

    # Go asks for a certificate without checking it: the same access as not asking.
    request = load_web_config(str(workdir / "client-auth-RequestClientCert.yml")).ssl_context()
    assert request is not None
    assert request.verify_mode == ssl.CERT_NONE


def test_no_tls_without_certificate_settings(workdir: Path) -> None:
    shutil.copy(DATA / "valid" / "versions-without-certificate.yml", workdir / "v.yml")
    config = load_web_config(str(workdir / "v.yml"))
    assert config.ssl_context() is None
    assert config.authenticate(None) is True


def test_relative_paths_are_relative_to_the_config_file(
    pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "conf").mkdir()
    shutil.copy(pki.server_cert, tmp_path / "certs" / "s.pem")
    shutil.copy(pki.server_key, tmp_path / "certs" / "s.key")
    path = write_config(
        tmp_path / "conf" / "web.yml",
        "tls_server_config:\n  cert_file: ../certs/s.pem\n  key_file: ../certs/s.key\n",
    )
    monkeypatch.chdir(tmp_path / "certs")  # a working directory where the paths would miss
    assert load_web_config(path).ssl_context() is not None


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yml"
    with pytest.raises(WebConfigError) as err:
        load_web_config(str(path))
    assert str(err.value) == f"{path}: cannot read the web config file: No such file or directory"


def test_encrypted_key_is_refused_without_prompting(pki: PKI, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (tmp_path / "enc.key").write_bytes(encrypted)
    path = write_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: enc.key\n",
    )
    with pytest.raises(WebConfigError) as err:
        load_web_config(path)
    assert str(err.value) == (
        f"{path}: tls_server_config.key_file: expected an unencrypted private key, "
        f"'{tmp_path / 'enc.key'}' is protected by a passphrase"
    )


# --- secrets never shown ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # a password where the hash belongs
        "basic_auth_users:\n  prometheus: correct-horse-battery-staple\n",
        # a hash Go refuses
        f"basic_auth_users:\n  prometheus: {PROMETHEUS_HASH.replace('$04$', '$03$')}\n",
        # a YAML error on the line of the hash
        f'basic_auth_users:\n  prometheus: "{PROMETHEUS_HASH}\n',
        # a hash written as a key
        f"{PROMETHEUS_HASH}: x\n",
        "basic_auth_users:\n  prometheus: {correct-horse-battery-staple: 1}\n",
    ],
)
def test_errors_never_show_a_password_or_hash(tmp_path: Path, text: str) -> None:
    path = write_config(tmp_path / "web.yml", text)
    with pytest.raises(WebConfigError) as err:
        load_web_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}:")
    for secret in ("correct-horse", "Ez8YO8hcsiuKyGXFAX64f", "$2y$0"):
        assert secret not in message
        assert secret not in repr(err.value)


def test_loaded_config_never_shows_hashes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    legacy = "$2$04$Ez8YO8hcsiuKyGXFAX64f.g.sIndll9sIOVMf5B8.Oiy7/eQWL/4eXY"
    path = write_config(
        tmp_path / "web.yml",
        f"basic_auth_users:\n  prometheus: {PROMETHEUS_HASH}\n  legacy: {legacy}\n",
    )
    config = load_web_config(path)
    assert repr(config) == (f"WebConfig(path={path!r}, tls=False, basic_auth_users=2, headers=[])")
    assert [logged(r) for r in caplog.records] == [
        (
            "the hash is not a standard bcrypt hash ($2a$, $2b$ or $2y$); this user cannot log in",
            {"file": path, "key": "basic_auth_users.legacy"},
        )
    ]
    config.authenticate(basic(b"prometheus", b"wrong"))
    config.authenticate(basic(b"legacy", b"wrong"))
    for record in caplog.records:
        assert "Ez8YO8hcsiuKyGXFAX64f" not in LogfmtFormatter().format(record)


# --- basic auth -------------------------------------------------------------------------


@pytest.fixture
def users_config(tmp_path: Path) -> WebConfig:
    shutil.copy(DATA / "valid" / "basic-auth.yml", tmp_path / "basic-auth.yml")
    return load_web_config(str(tmp_path / "basic-auth.yml"))


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (basic(b"prometheus", b"scrape-me"), True),
        (basic(b"alice", b"alice-pw"), True),
        (basic(b"bob", b"bob-pw"), True),
        ("basic " + basic(b"bob", b"bob-pw").split()[1], True),  # the scheme is case-blind
        (basic(b"prometheus", b"alice-pw"), False),
        (basic(b"alice", b"scrape-me"), False),
        (basic(b"prometheus", b"scrape-me "), False),
        (basic(b"Prometheus", b"scrape-me"), False),
        (basic(b"mallory", b"scrape-me"), False),
        (basic(b"", b""), False),
        (None, False),
        ("", False),
        ("Bearer scrape-me", False),
        ("Basic", False),
        ("Basic !!!!", False),
        ("Basic " + base64.b64encode(b"prometheus").decode(), False),  # no colon
        ("Basic " + base64.b64encode(b"prometheus:scrape-me").decode().rstrip("="), False),
        ("Basic cHJvbWV0aGV1czpzY3JhcGUtbWU=\u00e9", False),
    ],
)
def test_authenticate(users_config: WebConfig, header: str | None, allowed: bool) -> None:
    assert users_config.authenticate(header) is allowed


def test_without_users_everyone_is_allowed(tmp_path: Path) -> None:
    config = load_web_config(write_config(tmp_path / "web.yml", ""))
    assert config.authenticate(None) is True
    assert config.authenticate("Basic garbage") is True


def test_utf8_credentials(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw("pässwörd".encode(), bcrypt.gensalt(4)).decode()
    config = load_web_config(
        write_config(tmp_path / "web.yml", f'basic_auth_users:\n  "zoë": "{hashed}"\n')
    )
    assert config.authenticate(basic("zoë".encode(), "pässwörd".encode())) is True
    assert config.authenticate(basic("zoë".encode("latin-1"), "pässwörd".encode())) is False


def test_password_longer_than_bcrypt_uses(tmp_path: Path) -> None:
    # bcrypt reads 72 bytes; hashes made by htpasswd or Go hold only those, so only those count.
    password = b"p" * 72
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(4)).decode()
    config = load_web_config(
        write_config(tmp_path / "web.yml", f"basic_auth_users:\n  u: '{hashed}'\n")
    )
    assert config.authenticate(basic(b"u", password)) is True
    assert config.authenticate(basic(b"u", password + b"and more")) is True
    assert config.authenticate(basic(b"u", password[:71])) is False


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(auth.bcrypt, "checkpw", counting)
    return calls


def test_successful_checks_are_cached(users_config: WebConfig, bcrypt_calls: list[bytes]) -> None:
    good = basic(b"alice", b"alice-pw")
    assert [users_config.authenticate(good) for _ in range(5)] == [True] * 5
    assert len(bcrypt_calls) == 1

    # Failures are not cached: each costs a bcrypt check.
    bad = basic(b"alice", b"guess")
    assert [users_config.authenticate(bad) for _ in range(3)] == [False] * 3
    assert len(bcrypt_calls) == 4

    # The cache is keyed by a digest, never by the credentials themselves.
    keys = users_config.cached_credentials()
    assert len(keys) == 1
    assert len(keys[0]) == 32
    assert b"alice-pw" not in keys[0]
    assert b"alice" not in keys[0]


def test_unknown_user_costs_a_bcrypt_check_too(
    users_config: WebConfig, bcrypt_calls: list[bytes]
) -> None:
    # Even with the password of another user, an unknown name never gets in.
    assert users_config.authenticate(basic(b"mallory", b"scrape-me")) is False
    assert len(bcrypt_calls) == 1


def test_unknown_user_is_checked_against_the_cost_10_decoy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The only user's hash has cost 14. Were an unknown name checked against it (as against
    # "the first user's hash"), the bcrypt call would show cost 14; the decoy has cost 10,
    # like the exporter-toolkit's, so a wrong name costs what a usual wrong password costs.
    cost14 = "$2b$14$" + "a" * 53
    config = load_web_config(
        write_config(tmp_path / "web.yml", f"basic_auth_users:\n  only: '{cost14}'\n")
    )
    compared: list[bytes] = []

    def recording(password: bytes, hashed: bytes) -> bool:
        compared.append(hashed)
        return False

    monkeypatch.setattr(auth.bcrypt, "checkpw", recording)
    assert config.authenticate(basic(b"mallory", b"anything")) is False
    assert config.authenticate(basic(b"only", b"anything")) is False
    assert compared == [auth.DECOY_HASH, cost14.encode()]
    assert compared[0][:7] == b"$2b$10$"
    assert bcrypt.checkpw(b"", auth.DECOY_HASH) is False  # a real, well-formed bcrypt hash


def test_decoy_never_lets_anyone_in(users_config: WebConfig) -> None:
    # Whatever password the decoy was made from, an unknown user is refused all the same.
    assert users_config.authenticate(basic(b"nobody", b"")) is False


def test_cache_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bcrypt_calls: list[bytes]
) -> None:
    config = load_web_config(
        write_config(tmp_path / "web.yml", f"basic_auth_users:\n  prometheus: {PROMETHEUS_HASH}\n")
    )
    # Every password counts as right here, so every attempt is a cached success.
    monkeypatch.setattr(auth.bcrypt, "checkpw", lambda password, hashed: True)
    for i in range(auth.CACHE_SIZE + 50):
        assert config.authenticate(basic(b"prometheus", str(i).encode())) is True
    assert len(config.cached_credentials()) == auth.CACHE_SIZE


def test_concurrent_authentication(users_config: WebConfig) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def attempt(header: str, expected: bool) -> None:
        outcome = users_config.authenticate(header) is expected
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=attempt, args=(basic(b"bob", b"bob-pw"), True)) for _ in range(10)
    ] + [threading.Thread(target=attempt, args=(basic(b"bob", b"nope"), False)) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [True] * 20


# --- over the network -------------------------------------------------------------------


def test_https_with_basic_auth(pki: PKI, tmp_path: Path) -> None:
    config = load_web_config(
        write_config(tmp_path / "web.yml", tls_config(pki, users=f"prometheus: {PROMETHEUS_HASH}"))
    )
    with serving(config) as server, requests.Session() as session:
        # verify is given per request: a session-wide one loses to REQUESTS_CA_BUNDLE.
        ok = session.get(
            url(server), auth=("prometheus", PROMETHEUS_PASSWORD), verify=str(pki.ca), timeout=30
        )
        assert (ok.status_code, ok.text) == (200, "ok\n")
        assert "WWW-Authenticate" not in ok.headers

        for auth in [("prometheus", "wrong"), ("nobody", PROMETHEUS_PASSWORD), None]:
            denied = session.get(url(server), auth=auth, verify=str(pki.ca), timeout=30)
            assert (denied.status_code, denied.text) == (401, "Unauthorized\n")
            assert denied.headers["WWW-Authenticate"] == WWW_AUTHENTICATE


def test_configured_headers_are_sent(tmp_path: Path) -> None:
    shutil.copy(DATA / "valid" / "http-headers.yml", tmp_path / "h.yml")
    config = load_web_config(str(tmp_path / "h.yml"))
    with serving(config) as server:
        response = requests.get(url(server, "http"), timeout=30)
    assert response.status_code == 200
    assert {k: response.headers[k] for k in config.headers} == {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "sameorigin",
        "X-XSS-Protection": "1; mode=block",
        "Content-Security-Policy": "default-src 'none'",
    }


def test_header_values_cannot_inject_lines(tmp_path: Path) -> None:
    config = load_web_config(
        write_config(
            tmp_path / "web.yml",
            'http_server_config:\n  headers:\n    X-XSS-Protection: "0\\r\\nSet-Cookie: a=b"\n',
        )
    )
    assert dict(config.headers) == {"X-XSS-Protection": "0  Set-Cookie: a=b"}


def get_with_client_cert(
    server: ServerForTests, pki: PKI, rogue: bool = False
) -> requests.Response:
    """A GET presenting the trusted client certificate, or the one from an untrusted CA."""
    cert = (pki.rogue_cert, pki.rogue_key) if rogue else (pki.client_cert, pki.client_key)
    return requests.get(
        url(server), verify=str(pki.ca), cert=(str(cert[0]), str(cert[1])), timeout=30
    )


# client_auth_type: whether a client without a certificate, with one the client CA signed, and
# with a rogue one (another CA's) is served. Go's RequireAnyClientCert accepts any certificate
# unverified; Python's ssl module cannot, so it verifies against the client CA and says so.
CLIENT_AUTH = {
    "RequireAndVerifyClientCert": (False, True, False),
    "VerifyClientCertIfGiven": (True, True, False),
    "RequireAnyClientCert": (False, True, False),
}
REQUIRE_ANY_WARNING = (
    "client certificates will be verified, since Python's ssl module cannot accept "
    "them unverified as Go's RequireAnyClientCert does"
)


@pytest.mark.parametrize("auth_type", sorted(CLIENT_AUTH))
def test_mutual_tls_serves_the_clients_its_client_auth_type_admits(
    pki: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture, auth_type: str
) -> None:
    path = write_config(
        tmp_path / "web.yml",
        tls_config(pki, f"client_ca_file: {pki.ca}\nclient_auth_type: {auth_type}"),
    )
    config = load_web_config(path)
    warnings = [logged(r) for r in caplog.records if r.levelno == logging.WARNING]
    if auth_type == "RequireAnyClientCert":
        assert warnings == [
            (
                REQUIRE_ANY_WARNING,
                {
                    "file": path,
                    "key": "tls_server_config.client_auth_type",
                    "verified_against": str(pki.ca),
                },
            )
        ]
    else:
        assert warnings == []
    without, trusted, rogue = CLIENT_AUTH[auth_type]
    with serving(config) as server:
        for served, get in (
            (without, lambda: requests.get(url(server), verify=str(pki.ca), timeout=30)),
            (trusted, lambda: get_with_client_cert(server, pki)),
            (rogue, lambda: get_with_client_cert(server, pki, rogue=True)),
        ):
            if served:
                answer = get()
                assert (answer.status_code, answer.text) == (200, "ok\n")
            else:
                with pytest.raises(requests.exceptions.ConnectionError):
                    get()


def handshake(server: ServerForTests, context: ssl.SSLContext) -> tuple[str | None, str]:
    with (
        socket.create_connection(server.server_address[:2], timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version(), tls.cipher()[0]


def test_min_version_tls13_refuses_a_tls12_client(pki: PKI, tmp_path: Path) -> None:
    config = load_web_config(
        write_config(tmp_path / "web.yml", tls_config(pki, "min_version: TLS13"))
    )
    with serving(config) as server:
        assert handshake(server, client_context(pki))[0] == "TLSv1.3"
        tls12_only = client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
        with pytest.raises(ssl.SSLError) as err:
            handshake(server, tls12_only)
        assert err.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"


def test_max_version_and_cipher_suites_apply(pki: PKI, tmp_path: Path) -> None:
    config = load_web_config(
        write_config(
            tmp_path / "web.yml",
            tls_config(
                pki,
                "max_version: TLS12\n"
                "cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]",
            ),
        )
    )
    with serving(config) as server:
        assert handshake(server, client_context(pki)) == (
            "TLSv1.2",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
        )


def curve_client(pki: PKI, curve: str) -> ssl.SSLContext:
    """A TLS 1.3 client that offers only ``curve`` (OpenSSL's name) for the key exchange.

    TLS 1.3 because in TLS 1.2 the offered curves also decide whether the server's ECDSA
    certificate (trustme's, on P-256) may be used at all, which would hide what is tested.
    """
    context = client_context(pki, minimum_version=ssl.TLSVersion.TLSv1_3)
    context.set_ecdh_curve(curve)
    return context


CLIENT_CURVES = ("prime256v1", "secp384r1", "secp521r1", "X25519")


def test_a_single_curve_is_enforced(
    pki: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Without curve_preferences, a client offering any one of the curves gets through.
    plain = load_web_config(write_config(tmp_path / "plain.yml", tls_config(pki)))
    with serving(plain) as server:
        for curve in CLIENT_CURVES:
            assert handshake(server, curve_client(pki, curve))[0] == "TLSv1.3", curve
    # With one curve, only a client offering that one does.
    for go_name, openssl_name in [("CurveP384", "secp384r1"), ("X25519", "X25519")]:
        path = write_config(
            tmp_path / "web.yml", tls_config(pki, f"curve_preferences: [{go_name}]")
        )
        config = load_web_config(path)
        with serving(config) as server:
            assert handshake(server, curve_client(pki, openssl_name))[0] == "TLSv1.3"
            for other in set(CLIENT_CURVES) - {openssl_name}:
                with pytest.raises(ssl.SSLError) as err:
                    handshake(server, curve_client(pki, other))
                assert err.value.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE", (go_name, other)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_toolkits_some_curves_file_is_enforced(pki: PKI, workdir: Path) -> None:
    # The exporter-toolkit's someCurves case: TLS 1.3, CurveP521 only.
    config = load_web_config(str(place(DATA / "valid" / "tls-one-curve.yml", workdir)))
    with serving(config) as server:
        assert handshake(server, curve_client(pki, "secp521r1"))[0] == "TLSv1.3"
        with pytest.raises(ssl.SSLError) as err:
            handshake(server, curve_client(pki, "X25519"))
        assert err.value.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"


def test_several_curves_cannot_be_set_and_say_so(
    pki: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(
        tmp_path / "web.yml", tls_config(pki, "curve_preferences: [X25519, CurveP384, X25519]")
    )
    config = load_web_config(path)
    assert [logged(r) for r in caplog.records if r.levelno == logging.WARNING] == [
        (
            "curve_preferences lists several curves, and Python's ssl module can set only one: "
            "OpenSSL's default groups are used instead",
            {
                "file": path,
                "key": "tls_server_config.curve_preferences",
                "curves": "X25519,CurveP384",
            },
        )
    ]
    with serving(config) as server:  # OpenSSL's defaults: the listed ones and more
        for curve in ("prime256v1", "secp384r1", "X25519"):
            assert handshake(server, curve_client(pki, curve))[0] == "TLSv1.3"


@pytest.mark.parametrize(
    ("setting", "warned"), [("true", True), ("yes", True), ("false", False), (None, False)]
)
def test_http2_asked_for_is_said_not_to_be_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, setting: str | None, warned: bool
) -> None:
    text = f"http_server_config:\n  http2: {setting}\n" if setting else "basic_auth_users: {}\n"
    path = write_config(tmp_path / "web.yml", text)
    load_web_config(path)
    expected = [
        (
            "http2 is not served: the server speaks HTTP/1.1 only, which every Prometheus speaks",
            {"file": path, "key": "http_server_config.http2"},
        )
    ]
    assert [logged(r) for r in caplog.records if r.levelno == logging.WARNING] == (
        expected if warned else []
    )


def test_a_client_that_never_handshakes_blocks_nobody(pki: PKI, tmp_path: Path) -> None:
    config = load_web_config(write_config(tmp_path / "web.yml", tls_config(pki)))
    with serving(config, handshake_timeout=120) as server:
        stalled = [socket.create_connection(server.server_address[:2]) for _ in range(3)]
        try:
            response = requests.get(url(server), verify=str(pki.ca), timeout=30)
            assert (response.status_code, response.text) == (200, "ok\n")
            for sock in stalled:  # still open: the server is waiting for their handshakes
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for sock in stalled:
                sock.close()


def test_a_stalled_handshake_is_closed_after_the_timeout(pki: PKI, tmp_path: Path) -> None:
    config = load_web_config(write_config(tmp_path / "web.yml", tls_config(pki)))
    with (
        serving(config, handshake_timeout=0.2) as server,
        socket.create_connection(server.server_address[:2]) as stalled,
    ):
        stalled.settimeout(60)
        assert stalled.recv(1) == b""
        response = requests.get(url(server), verify=str(pki.ca), timeout=30)
        assert response.status_code == 200


def test_plain_http_to_the_tls_port_gets_400(pki: PKI, tmp_path: Path) -> None:
    config = load_web_config(write_config(tmp_path / "web.yml", tls_config(pki)))
    with serving(config) as server:
        response = requests.get(url(server, "http"), timeout=30)
    assert (response.status_code, response.text) == (
        400,
        "Client sent an HTTP request to an HTTPS server.\n",
    )


def test_renewed_certificate_is_served_without_restart(pki: PKI, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    config = load_web_config(
        write_config(
            tmp_path / "web.yml", "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
        )
    )
    new_ca = trustme.CA()
    renewed = new_ca.issue_cert("127.0.0.1")
    new_ca.cert_pem.write_to_path(str(tmp_path / "new-ca.pem"))
    with serving(config) as server:
        assert requests.get(url(server), verify=str(pki.ca), timeout=30).status_code == 200
        # Written next to the old files and renamed over them, as certificate managers do.
        renewed.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt.new"))
        renewed.private_key_pem.write_to_path(str(tmp_path / "tls.key.new"))
        os.replace(tmp_path / "tls.key.new", key)
        os.replace(tmp_path / "tls.crt.new", cert)
        after = requests.get(url(server), verify=str(tmp_path / "new-ca.pem"), timeout=30)
        assert after.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url(server), verify=str(pki.ca), timeout=30)


def test_a_broken_renewal_keeps_the_previous_certificate(
    pki: PKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    path = write_config(
        tmp_path / "web.yml", "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
    )
    config = load_web_config(path)
    with serving(config) as server:
        shutil.copy(pki.other_key, key)  # a key that does not belong to the certificate
        for _ in range(3):
            response = requests.get(url(server), verify=str(pki.ca), timeout=30)
            assert response.status_code == 200
    warnings = [logged(r) for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        (
            "TLS certificate reload failed; the previous one keeps serving",
            {
                "error": f"{path}: tls_server_config.key_file: expected the private key of the "
                f"certificate in '{cert}', '{key}' holds another key"
            },
        )
    ]


def test_server_without_tls_speaks_plain_http(tmp_path: Path) -> None:
    config = load_web_config(write_config(tmp_path / "web.yml", ""))
    with serving(config) as server:
        response = requests.get(url(server, "http"), timeout=30)
    assert (response.status_code, response.text) == (200, "ok\n")


def test_handshake_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="handshake_timeout must be positive"):
        TLSThreadingHTTPServer(("127.0.0.1", 0), Handler, handshake_timeout=0)


# --- the exporter-toolkit's newer keys: inline PEM, client_allowed_sans, rate_limit ---------


def inline(path: Path) -> str:
    """PEM text as a YAML block scalar under a key of tls_server_config."""
    return "|\n" + "".join(f"    {line}\n" for line in path.read_text().strip().splitlines())


def test_inline_certificate_and_key_serve_https(pki: PKI, tmp_path: Path) -> None:
    config = load_web_config(
        write_config(
            tmp_path / "web.yml",
            f"tls_server_config:\n  cert: {inline(pki.server_cert)}  key: {inline(pki.server_key)}",
        )
    )
    with serving(config) as server:
        response = requests.get(url(server), verify=str(pki.ca), timeout=30)
    assert (response.status_code, response.text) == (200, "ok\n")


def test_inline_client_ca_verifies_client_certificates(pki: PKI, tmp_path: Path) -> None:
    config = load_web_config(
        write_config(
            tmp_path / "web.yml",
            tls_config(pki, "client_auth_type: RequireAndVerifyClientCert")
            + f"  client_ca: {inline(pki.ca)}",
        )
    )
    with serving(config) as server:
        trusted = get_with_client_cert(server, pki)
        assert trusted.status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            get_with_client_cert(server, pki, rogue=True)


def test_an_inline_key_is_never_shown(pki: PKI, tmp_path: Path) -> None:
    key_text = pki.other_key.read_text()
    path = write_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key: {inline(pki.other_key)}",
    )
    with pytest.raises(WebConfigError) as err:
        load_web_config(path)
    assert str(err.value) == (
        f"{path}: tls_server_config.key: expected the private key of the certificate in "
        f"'{pki.server_cert}', (inline key) holds another key"
    )
    body = key_text.strip().splitlines()[1]
    assert body not in str(err.value)
    config = load_web_config(
        write_config(
            tmp_path / "good.yml",
            f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key: {inline(pki.server_key)}",
        )
    )
    assert pki.server_key.read_text().strip().splitlines()[1] not in repr(config)


def test_rate_limit_is_read(workdir: Path) -> None:
    config = load_web_config(str(place(DATA / "valid" / "rate-limit.yml", workdir)))
    assert config.rate_limit == RateLimit(interval=0.25, burst=20)
    burst_only = load_web_config(str(place(DATA / "valid" / "rate-limit-burst-only.yml", workdir)))
    assert burst_only.rate_limit is None


def test_a_zero_burst_is_accepted_as_in_go_but_said_to_refuse_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(tmp_path / "web.yml", "rate_limit:\n  interval: 1s\n  burst: 0\n")
    assert load_web_config(path).rate_limit == RateLimit(interval=1.0, burst=0)
    assert [logged(r) for r in caplog.records if r.levelno == logging.WARNING] == [
        (
            "rate_limit.burst is below 1: every request will be refused (429)",
            {"file": path, "key": "rate_limit.burst", "burst": 0},
        )
    ]
    assert TokenBucket(RateLimit(interval=1.0, burst=0)).allow() is False


def test_token_bucket_starts_full_and_refills_one_token_per_interval() -> None:
    now = [1000.0]
    bucket = TokenBucket(RateLimit(interval=10.0, burst=3), clock=lambda: now[0])
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    now[0] += 9.0
    assert bucket.allow() is False
    now[0] += 1.0  # one interval after the bucket ran dry: one token
    assert [bucket.allow(), bucket.allow()] == [True, False]
    now[0] += 1000.0  # a long pause refills up to the burst, never beyond
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]


def test_client_sans_are_spelled_as_go_spells_them() -> None:
    peercert = {
        "subjectAltName": (
            ("DNS", "prometheus.example"),
            ("IP Address", "192.0.2.7"),
            ("IP Address", "2001:DB8:0:0:0:0:0:1\n"),
            ("email", "ops@example.org"),
            ("URI", "spiffe://example.org/prometheus"),
            ("DirName", ((("commonName", "x"),),)),
        )
    }
    assert client_sans(peercert) == [
        "prometheus.example",
        "192.0.2.7",
        "2001:db8::1",
        "ops@example.org",
        "spiffe://example.org/prometheus",
    ]
    assert client_sans(None) == []


# --- the settings in force, and how a reload replaces them ---------------------------------


def test_a_reload_keeps_an_unchanged_rate_limit_bucket_and_starts_a_changed_one_full(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path / "web.yml", "rate_limit:\n  interval: 1h\n  burst: 2\n")
    holder = WebHolder.load(path)
    bucket = holder.current.limiter
    assert bucket is not None and [bucket.allow(), bucket.allow()] == [True, True]

    config = holder.read()
    assert config is not None
    holder.apply(config)  # the same limit: the same, empty bucket
    assert holder.current.limiter is bucket
    assert bucket.allow() is False

    write_config(tmp_path / "web.yml", "rate_limit:\n  interval: 1h\n  burst: 3\n")
    holder.apply(holder.read())  # type: ignore[arg-type]
    changed = holder.current.limiter
    assert changed is not None and changed is not bucket
    assert [changed.allow() for _ in range(4)] == [True, True, True, False]

    write_config(tmp_path / "web.yml", f"basic_auth_users:\n  prometheus: {PROMETHEUS_HASH}\n")
    holder.apply(holder.read())  # type: ignore[arg-type]
    assert holder.current.limiter is None
    check = holder.current.authenticate
    assert check is not None
    assert check(basic(b"prometheus", PROMETHEUS_PASSWORD.encode())) is True
    assert check(None) is False


def test_a_reload_may_not_turn_tls_on_or_off(pki: PKI, tmp_path: Path) -> None:
    plain = WebHolder.load(write_config(tmp_path / "web.yml", "basic_auth_users: {}\n"))
    assert plain.tls is False
    write_config(tmp_path / "web.yml", tls_config(pki))
    with pytest.raises(WebConfigError) as err:
        plain.read()
    assert str(err.value) == f"{tmp_path / 'web.yml'}: turning TLS on or off needs a restart"
    assert plain.current.ssl_context is None

    secure = WebHolder.load(write_config(tmp_path / "tls.yml", tls_config(pki)))
    assert secure.tls is True
    write_config(tmp_path / "tls.yml", "basic_auth_users: {}\n")
    with pytest.raises(WebConfigError) as err:
        secure.read()
    assert str(err.value) == f"{tmp_path / 'tls.yml'}: turning TLS on or off needs a restart"

    assert WebHolder.load(None).read() is None  # no file, nothing to re-read

"""TLS servers with short-lived self-signed certificates made by openssl (for localhost and 127.0.0.1)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

from tests.servers.httpstub import Handler, StubServer


def make_certificate(directory: Path, days: int, name: str = "localhost") -> tuple[Path, Path]:
    """(certificate, key) valid from now for `days` days."""
    cert, key = directory / f"{name}-{days}d.crt", directory / f"{name}-{days}d.key"
    subject, names = f"/CN={name}/O=Shorts Test", f"subjectAltName=DNS:{name},IP:127.0.0.1"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(days)]
    argv += ["-keyout", str(key), "-out", str(cert), "-subj", subject, "-addext", names]
    subprocess.run(argv, check=True, capture_output=True)
    return cert, key


class _HealthHandler(Handler):
    def do_GET(self) -> None:
        self.send_json(200, {"status": "ok"})


class TLSServer(StubServer):
    """An HTTPS server whose certificate expires in `days` days; `ca_file` is that certificate."""

    def __init__(self, directory: Path, days: int) -> None:
        self.ca_file, key = make_certificate(directory, days)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key)
        super().__init__(_HealthHandler, tls=context)

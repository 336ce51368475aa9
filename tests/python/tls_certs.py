"""Throwaway certificates for TLS tests, made with the openssl CLI in a temporary directory.

Nothing is checked in: each test run makes a CA, a server certificate for localhost and
127.0.0.1, a client certificate signed by the same CA, and one signed by an unrelated CA.
"""

from __future__ import annotations

import datetime
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr.decode(errors='replace')}")


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """(certificate, key) of a self-signed CA."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return cert, key


def make_leaf(directory: Path, ca: tuple[Path, Path], name: str, *, server: bool,
              days: int = 2, client: bool = False) -> tuple[Path, Path]:
    """(certificate, key) of a leaf signed by `ca`; a server one is valid for localhost and
    127.0.0.1 (and as a client too with `client`, as node certificates are)."""
    cert, key, csr, ext = (directory / f"{name}.crt", directory / f"{name}.key",
                           directory / f"{name}.csr", directory / f"{name}.ext")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}", cwd=directory)
    usage = "serverAuth,clientAuth" if server and client else "serverAuth" if server else "clientAuth"
    lines = [f"extendedKeyUsage={usage}", "basicConstraints=CA:FALSE"]
    if server:
        lines.append("subjectAltName=DNS:localhost,IP:127.0.0.1")
    ext.write_text("\n".join(lines) + "\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-out", str(cert), "-days", str(days), "-extfile", str(ext), cwd=directory)
    return cert, key


@dataclass
class Certs:
    directory: Path
    ca: Path
    server_keystore: Path  # Kafka's PEM keystore file: key + certificate
    server_cert: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate of another CA
    stranger_key: Path

    def renew_server(self, name: str) -> Path:
        """A new server certificate (same CA) written over the keystore; returns its cert."""
        cert, key = make_leaf(self.directory, (self.ca, self.directory / "ca.key"), name, server=True)
        tmp = self.server_keystore.with_suffix(".tmp")
        tmp.write_text(key.read_text() + cert.read_text())
        tmp.replace(self.server_keystore)  # atomic, as cert-manager and Vault agents do
        return cert


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(directory, "ca")
    server_cert, server_key = make_leaf(directory, ca, "localhost", server=True)
    keystore = directory / "server.pem"
    keystore.write_text(server_key.read_text() + server_cert.read_text())
    client_cert, client_key = make_leaf(directory, ca, "alice", server=False)
    other = make_ca(directory, "other-ca")
    stranger_cert, stranger_key = make_leaf(directory, other, "mallory", server=False)
    return Certs(directory, ca[0], keystore, server_cert, client_cert, client_key,
                 stranger_cert, stranger_key)


def serial_of(cert: Path) -> int:
    out = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-serial"],
                         capture_output=True, timeout=30, check=True).stdout.decode()
    return int(out.strip().split("=", 1)[1], 16)


def not_after_unix(cert: Path) -> int:
    out = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-enddate"],
                         capture_output=True, timeout=30, check=True).stdout.decode()
    stamp = " ".join(out.strip().split("=", 1)[1].replace(" GMT", "").split())
    when = datetime.datetime.strptime(stamp, "%b %d %H:%M:%S %Y")
    return int(when.replace(tzinfo=datetime.timezone.utc).timestamp())


def make_node_keystore(directory: Path, ca: tuple[Path, Path], node_id: int) -> Path:
    """A node's PEM keystore (key + certificate): subject CN=node-<id>, the form Shoal binds to
    a node id, for 127.0.0.1 as server and client."""
    cert, key = make_leaf(directory, ca, f"node-{node_id}", server=True, client=True)
    keystore = directory / f"node-{node_id}-keystore.pem"
    keystore.write_text(key.read_text() + cert.read_text())
    return keystore

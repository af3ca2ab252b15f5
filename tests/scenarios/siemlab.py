"""The lab SIEM as the logging scenario tests see it: a container whose rsyslog receiver stores
what each sending host sends in /var/log/siem/<host>.log, reached by `podman exec` for
inspection and over the scenario's podman network for TLS probes from the controller."""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import shlex
import socket
import ssl
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOG_DIR = "/var/log/siem"


def podman(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=timeout)


class Siem:
    """The receiver container of the scenario (its name is the hosts' logging_siem_host)."""

    def __init__(self, container: str, port: int = 6514):
        self.container = container
        self.port = port

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        return podman("exec", self.container, "bash", "-c", script, check=check)

    @property
    def address(self) -> str:
        networks = json.loads(podman("inspect", self.container).stdout)[0]["NetworkSettings"]["Networks"]
        return next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))

    def ids(self, prefix: str, host: str | None = None) -> set[str]:
        """Unique message IDs (`prefix` and the letters and digits that follow it) stored for one
        sending host, or for any."""
        where = f"{LOG_DIR}/{host}.log" if host else f"-r {LOG_DIR}"
        out = self.sh(f"grep -h -o -E '{re.escape(prefix)}[A-Za-z0-9]*' {where} 2>/dev/null || true").stdout
        return set(out.split())

    def lines(self, host: str, token: str) -> list[str]:
        """The lines stored for one sending host that contain `token`."""
        out = self.sh(f"grep -h -F -e {shlex.quote(token)} {LOG_DIR}/{host}.log 2>/dev/null || true").stdout
        return out.splitlines()

    def stored_anywhere(self, token: str) -> list[str]:
        """Files of the receiver that mention `token`: its per-host store and its own logs."""
        out = self.sh(f"grep -r -l -F '{token}' {LOG_DIR} /var/log/syslog /var/log/messages 2>/dev/null || true")
        return out.stdout.split()

    def wait_for(self, prefix: str, count: int, host: str | None = None, timeout: float = 120) -> set[str]:
        """Poll until `count` unique IDs with `prefix` are stored, or the bounded wait ends."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.ids(prefix, host)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(2)

    def stop(self) -> None:
        """An outage: the receiver stops (its socket unit too, so nothing starts it again)."""
        self.sh("systemctl stop syslog.socket rsyslog.service")

    def start(self) -> None:
        self.sh("systemctl start rsyslog.service")

    def listeners(self) -> str:
        return self.sh("ss -H -l -n -t -u -p").stdout


# --- TLS probes from the controller -------------------------------------------------------

def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_client_cert(directory: Path, name: str, ca_cert: x509.Certificate | None = None,
                     ca_key: ec.EllipticCurvePrivateKey | None = None) -> tuple[Path, Path]:
    """A clientAuth certificate for `name`, signed by the given CA, or by a fresh rogue CA."""
    if ca_cert is None or ca_key is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _sign(_name("rogue CA"), ca_key.public_key(), _name("rogue CA"), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(_name(name), key.public_key(), ca_cert.subject, ca_key, ca=False, dns=name)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def load_ca(pki: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    return cert, key


def _sign(subject, public_key, issuer, issuer_key, ca: bool, dns: str | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        builder = (builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def send_tls(address: str, port: int, ca_file: Path, server_name: str, message: str,
             cert: tuple[Path, Path] | None = None) -> str:
    """Send one octet-counted RFC 5425 syslog message over TLS; return how it went (the receiver
    may refuse during the handshake or drop the connection after it: both are refusals)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    frame = f"<86>1 - cw-tls-probe cityward-probe - - - {message}".encode()
    try:
        with (socket.create_connection((address, port), timeout=10) as raw,
              context.wrap_socket(raw, server_hostname=server_name) as tls):
            tls.sendall(str(len(frame)).encode() + b" " + frame)
            time.sleep(0.5)
            tls.settimeout(2)
            with contextlib.suppress(TimeoutError, ssl.SSLError, OSError):
                tls.recv(1)
        return "sent"
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {exc}"

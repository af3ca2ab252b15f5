#!/usr/bin/env python3
"""What a live sshd offers, read from its KEXINIT, compared with what `sshd -T` derives from the
file on disk (control CW-RES-07). A reload that never happened, or a daemon that kept an old
configuration, shows as a difference. Standard library only: it runs on the host (the ssh role)
and is imported by the control checks on the controller.

    sshd_offer.py [--port 22] [--host 127.0.0.1]   exit 0 when they match, 1 with the differences
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import subprocess
import sys

# KEXINIT name-lists, in order; sshd -T's keywords for the ones it configures.
FIELDS = ("kex", "hostkey", "ciphers_cs", "ciphers_sc", "macs_cs", "macs_sc")
COMPARED = {"kex": "kexalgorithms", "ciphers_cs": "ciphers", "macs_cs": "macs"}
# Pseudo-algorithms a server adds to its kex list to signal extensions, not configuration.
PSEUDO_KEX = ("ext-info-", "kex-strict-")


def read_kexinit(host: str, port: int, timeout: float = 10.0) -> dict[str, list[str]]:
    """Connect, exchange version strings, read the server's first (unencrypted) KEXINIT packet."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        stream = sock.makefile("rb")
        while not (line := stream.readline(256)).startswith(b"SSH-"):
            if not line:
                raise ConnectionError(f"{host}:{port} closed the connection before its SSH banner")
        sock.sendall(b"SSH-2.0-cityward_offer_probe\r\n")
        header = stream.read(5)
        if len(header) < 5:
            raise ConnectionError(f"{host}:{port} closed the connection before its KEXINIT")
        length, padding = struct.unpack(">IB", header)
        payload = stream.read(length - 1)[: length - 1 - padding]
    if not payload or payload[0] != 20:  # SSH_MSG_KEXINIT
        raise ConnectionError(f"{host}:{port} did not start with KEXINIT")
    offset, lists = 17, []  # message byte, 16-byte cookie
    for _ in FIELDS:
        (size,) = struct.unpack(">I", payload[offset:offset + 4])
        lists.append(payload[offset + 4:offset + 4 + size].decode("ascii").split(","))
        offset += 4 + size
    return dict(zip(FIELDS, lists, strict=True))


def configured(sshd_t: str) -> dict[str, list[str]]:
    """The algorithm lists of `sshd -T` output."""
    values = dict(line.partition(" ")[::2] for line in sshd_t.splitlines())
    return {field: values.get(keyword, "").split(",") for field, keyword in COMPARED.items()}


def differences(offered: dict[str, list[str]], wanted: dict[str, list[str]]) -> list[str]:
    """Lines describing each list the live daemon offers differently from its configuration."""
    found = []
    for field, keyword in COMPARED.items():
        live = [name for name in offered[field] if not (field == "kex" and name.startswith(PSEUDO_KEX))]
        if live != wanted[field]:
            found.append(f"{keyword}: the live sshd offers {','.join(live)} but its configuration says "
                         f"{','.join(wanted[field])}")
    return found


def sshd_t_command(address: str = "127.0.0.1") -> list[str]:
    """`sshd -T` for a login from `address`: the configuration a connection there would get."""
    return ["/usr/sbin/sshd", "-T", "-C", f"user=cityward-probe,host=localhost,addr={address}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=22)
    args = parser.parse_args()
    sshd_t = subprocess.run(sshd_t_command(args.host), capture_output=True, text=True, check=True).stdout
    found = differences(read_kexinit(args.host, args.port), configured(sshd_t))
    print(json.dumps({"match": not found, "differences": found}))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

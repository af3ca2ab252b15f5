"""What may face the internet, for the security-group and network-ACL rules (CW-NET-03): which
ports never, which alone, and the return range stateless NACLs must pass."""

from __future__ import annotations

# Remote administration and file transfer: never from the internet (Checkov covers 20/21/22/3389).
ADMIN_PORTS = {20: "FTP data", 21: "FTP", 22: "SSH", 23: "Telnet", 3389: "RDP", 5900: "VNC",
               5985: "WinRM", 5986: "WinRM over TLS"}
WEB_PORTS = (80, 443)  # FSBP EC2.18's default authorised ports for unrestricted ingress
# Return traffic through stateless NACLs (the stack's ephemeralPorts); contains no admin port.
RETURN_PORTS = (32768, 65535)


def covers(port_range: tuple[int, int], port: int) -> bool:
    return port_range[0] <= port <= port_range[1]


def admin_ports_in(port_range: tuple[int, int]) -> list[str]:
    """The admin ports a range opens, as 'port (what)'."""
    return [f"{port} ({label})" for port, label in ADMIN_PORTS.items() if covers(port_range, port)]


def web_only(proto: str, port_range: tuple[int, int]) -> bool:
    """The range is a single web port over tcp."""
    return proto == "tcp" and port_range[0] == port_range[1] and port_range[0] in WEB_PORTS

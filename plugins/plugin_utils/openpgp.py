"""Read an ASCII-armored OpenPGP key on the controller: its fingerprint, creation and expiry (issue 24).

The update mirror signs its publications with the city's key and every host pins the public half
(CW-PATCH-05, CW-PATCH-06). A key that is missing, expired, about to expire or not the one the hosts
pin must be refused before any host is touched, on a controller that may have no gpg: so this reads
the RFC 4880 packets itself. It reads only what it needs (the primary key and its self-signatures);
it does not verify signatures, which is apt's and gpgv's job on the hosts.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from dataclasses import dataclass

_ARMOR = re.compile(
    r"-----BEGIN PGP (?P<kind>PUBLIC|PRIVATE) KEY BLOCK-----\r?\n(?P<body>.*?)-----END PGP (?P=kind) KEY BLOCK-----",
    re.DOTALL)
# Packet tags (RFC 4880 4.3).
_SIGNATURE, _SECRET_KEY, _PUBLIC_KEY, _USER_ID = 2, 5, 6, 13
# Public-key algorithms and their public fields: MPIs, an OID before them (EC), KDF bytes after (ECDH).
_MPI_COUNT = {1: 2, 2: 2, 3: 2, 16: 3, 17: 4, 18: 1, 19: 1, 22: 1}
_WITH_OID = {18, 19, 22}
# Self-signatures on a user id (generic to positive certification) and subpackets read from them.
_CERTIFICATIONS = {0x10, 0x11, 0x12, 0x13}
_SUB_CREATED, _SUB_KEY_EXPIRES = 2, 9


class KeyReadError(ValueError):
    """The text is not a readable OpenPGP key; the message says why, never showing the text."""


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str            # 40 upper-case hex digits (v4 keys)
    created: dt.datetime
    expires: dt.datetime | None  # None: does not expire
    secret: bool                 # the block holds the private key

    def as_dict(self) -> dict:
        return {"fingerprint": self.fingerprint, "created": self.created.isoformat(),
                "expires": self.expires.isoformat() if self.expires else "", "secret": self.secret}


def _dearmor(text: str) -> list[tuple[bytes, bool]]:
    """(packets, holds a private key) of every armored key block in `text`, in order."""
    blocks = []
    for match in _ARMOR.finditer(text or ""):
        lines = match.group("body").replace("\r", "").split("\n")
        # Armor headers (Version:, Comment:) end at the first empty line, when there are any.
        if "" in lines and any(":" in line for line in lines[:lines.index("")]):
            lines = lines[lines.index("") + 1:]
        data = "".join(line.strip() for line in lines if line.strip() and not line.startswith("="))
        try:
            blocks.append((base64.b64decode(data, validate=True), match.group("kind") == "PRIVATE"))
        except (binascii.Error, ValueError) as exc:
            raise KeyReadError("the armored block is not valid base64") from exc
    if not blocks:
        raise KeyReadError("no '-----BEGIN PGP PUBLIC KEY BLOCK-----' or PRIVATE KEY BLOCK found")
    return blocks


def _fingerprint(public: bytes) -> str:
    # The v4 fingerprint is SHA-1 by definition (RFC 4880 12.2): an identifier here, not a defence.
    return hashlib.sha1(b"\x99" + len(public).to_bytes(2, "big") + public, usedforsecurity=False).hexdigest().upper()


def _packets(data: bytes):
    """Yield (tag, body) for each packet (old and new formats, no partial lengths in keys)."""
    at = 0
    while at < len(data):
        head = data[at]
        if not head & 0x80:
            raise KeyReadError(f"byte {at} is not a packet header")
        if head & 0x40:  # new format
            tag, at = head & 0x3F, at + 1
            first = data[at]
            if first < 192:
                length, at = first, at + 1
            elif first < 224:
                length, at = ((first - 192) << 8) + data[at + 1] + 192, at + 2
            elif first == 255:
                length, at = int.from_bytes(data[at + 1:at + 5], "big"), at + 5
            else:
                raise KeyReadError("partial body lengths are not used in keys")
        else:  # old format
            tag, kind, at = (head >> 2) & 0x0F, head & 0x03, at + 1
            size = {0: 1, 1: 2, 2: 4}.get(kind)
            if size is None:
                raise KeyReadError("indeterminate packet length")
            length, at = int.from_bytes(data[at:at + size], "big"), at + size
        if at + length > len(data):
            raise KeyReadError("a packet runs past the end of the key")
        yield tag, data[at:at + length]
        at += length


def _public_length(body: bytes) -> int:
    """Length of the public part of a v4 key packet body (a secret key packet starts with it)."""
    if not body or body[0] != 4:
        raise KeyReadError(f"only version 4 keys are read (got version {body[0] if body else 'none'})")
    algorithm, at = body[5], 6
    if algorithm not in _MPI_COUNT:
        raise KeyReadError(f"unknown public-key algorithm {algorithm}")
    if algorithm in _WITH_OID:
        at += 1 + body[at]
    for _ in range(_MPI_COUNT[algorithm]):
        bits = int.from_bytes(body[at:at + 2], "big")
        at += 2 + (bits + 7) // 8
    if algorithm == 18:  # ECDH: KDF parameters
        at += 1 + body[at]
    if at > len(body):
        raise KeyReadError("the key packet is truncated")
    return at


def _subpackets(block: bytes):
    at = 0
    while at < len(block):
        first = block[at]
        if first < 192:
            length, at = first, at + 1
        elif first < 255:
            length, at = ((first - 192) << 8) + block[at + 1] + 192, at + 2
        else:
            length, at = int.from_bytes(block[at + 1:at + 5], "big"), at + 5
        if length == 0:
            break
        yield block[at] & 0x7F, block[at + 1:at + length]
        at += length


def _self_signature(body: bytes) -> tuple[int, int | None] | None:
    """(signature time, key lifetime in seconds or None) of a v4 certification, else None."""
    if len(body) < 6 or body[0] != 4 or body[1] not in _CERTIFICATIONS:
        return None
    hashed_len = int.from_bytes(body[4:6], "big")
    created, lifetime = 0, None
    for kind, value in _subpackets(body[6:6 + hashed_len]):
        if kind == _SUB_CREATED and len(value) == 4:
            created = int.from_bytes(value, "big")
        elif kind == _SUB_KEY_EXPIRES and len(value) == 4:
            lifetime = int.from_bytes(value, "big") or None
    return created, lifetime


def read_key(text: str) -> KeyInfo:
    """The primary key of an armored OpenPGP key block; KeyReadError when it cannot be read."""
    data, secret = _dearmor(text)[0]
    primary, latest = None, None
    in_user_ids = False
    for tag, body in _packets(data):
        if tag in (_PUBLIC_KEY, _SECRET_KEY) and primary is None:
            public = body[:_public_length(body)]
            primary = (public, _fingerprint(public))
        elif tag == _USER_ID:
            in_user_ids = True
        elif tag == _SIGNATURE and in_user_ids:
            found = _self_signature(body)
            if found and (latest is None or found[0] >= latest[0]):
                latest = found
        elif tag in (7, 14):  # subkeys: the primary's self-signatures are all read
            in_user_ids = False
    if primary is None:
        raise KeyReadError("the block holds no key packet")
    created = dt.datetime.fromtimestamp(int.from_bytes(primary[0][1:5], "big"), dt.UTC)
    lifetime = latest[1] if latest else None
    expires = created + dt.timedelta(seconds=lifetime) if lifetime else None
    return KeyInfo(fingerprint=primary[1], created=created, expires=expires, secret=secret)


def keyring_fingerprints(data: bytes) -> list[str]:
    """Fingerprints of the primary keys of a keyring as apt's Signed-By reads it: binary (.gpg) or
    ASCII-armored (.asc, one or more blocks), in order. KeyReadError when it holds none."""
    if b"-----BEGIN PGP" in data:
        packets = b"".join(block for block, _ in _dearmor(data.decode("ascii", "replace")))
    else:
        packets = data
    found = [_fingerprint(body[:_public_length(body)]) for tag, body in _packets(packets) if tag == _PUBLIC_KEY]
    if not found:
        raise KeyReadError("no public key in the keyring")
    return found

"""Filters that let an inventory value into a configuration file only when it cannot change the
file's structure (issue 23, CW-RES-04): a newline in a SIEM peer name must not become a new line
of the rsyslog file, a user name must not become a sudoers rule.

They refuse, never strip or escape: a refused value fails the task with one line naming the
variable and the offending character (shown escaped, never the whole value: it may be a secret).
An acceptable value is returned unchanged, so rendered files stay byte-identical for good input.

    Port {{ ssh_port | cityward.hardening.conf_int('ssh_port') }}
    Ciphers {{ ssh_ciphers | cityward.hardening.conf_word('ssh_ciphers') | join(',') }}
    {{ accounts_breakglass_user | cityward.hardening.conf_name('accounts_breakglass_user') }} ALL=(ALL:ALL) ALL
    server {{ server.host | cityward.hardening.conf_word('logging_ntp_servers[].host') }} iburst nts
    target="{{ logging_siem_host | cityward.hardening.conf_quoted('logging_siem_host') }}"
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.cityward.hardening.plugins.plugin_utils.text import breaking_character, template_mark

# One token: ASCII letters, digits and the punctuation of names, addresses, CIDRs, paths, URIs and
# algorithm names. Everything else (whitespace, quotes, '#', ';', '\\', braces, '$', look-alike
# Unicode, ...) may end a token, start a comment or an escape in some configuration language.
_WORD = frozenset(string.ascii_letters + string.digits + "._:/@+-")
_WORD_TEXT = "ASCII letters, digits and ._:/@+-"
# User and group names: the conservative POSIX set Debian's adduser accepts by default. Narrower than
# a word: '+' is a netgroup in sudoers, '@' and ':' are host and list separators in sshd.
_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
_DIGITS = re.compile(r"[0-9]+")


def _shown(text: str) -> str:
    """`text` with every character outside printable ASCII escaped, for an error message."""
    return "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in str(text))


def _char(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"{ascii(c)} (U+{ord(c):04X}{' ' + name if name else ''})"


def _refuse(name: Any, index: int | None, problem: str) -> AnsibleFilterError:
    where = _shown(name) + (f"[{index}]" if index is not None else "")
    return AnsibleFilterError(f"{where}: refused for a configuration file (CW-RES-04): {problem}")


def _scalar(value: Any, name: Any, index: int | None) -> str:
    if isinstance(value, Mapping | list | tuple | set) or value is None:
        kind = "null" if value is None else "a mapping" if isinstance(value, Mapping) else "a list"
        raise _refuse(name, index, f"expected a single value, got {kind}")
    return str(value)


def _each(value: Any, name: Any, check) -> Any:
    """Apply `check(text, index)` to a scalar, or to every element of a list; return `value` as is."""
    if isinstance(value, list | tuple):
        for index, element in enumerate(value):
            check(_scalar(element, name, index), index)
    else:
        check(_scalar(value, name, None), None)
    return value


def _no_control(text: str, name: Any, index: int | None, what: str) -> None:
    if found := breaking_character(text):
        position, c = found
        raise _refuse(name, index, f"control character {_char(c)} at position {position} in {what}")
    if mark := template_mark(text):
        raise _refuse(name, index, f"template syntax {mark!r} in {what}")


def conf_word(value: Any, name: Any = "value", allow: str = "") -> Any:
    """One token (or a list of tokens): only ASCII letters, digits, ._:/@+- and the characters of
    `allow` (for a context that needs more, e.g. '#' in an MQTT topic filter). Not empty."""
    permitted = _WORD | frozenset(allow)

    def check(text: str, index: int | None) -> None:
        if not text:
            raise _refuse(name, index, "empty where one word is expected")
        for position, c in enumerate(text):
            if c not in permitted:
                raise _refuse(name, index, f"character {_char(c)} at position {position} where one word is expected "
                                           f"({_WORD_TEXT}{allow})")

    return _each(value, name, check)


def conf_name(value: Any, name: Any = "value") -> Any:
    """A user or group name (or a list of them): lower-case letters, digits, '_', '.', '-', starting with
    a letter or '_', at most 32 characters."""

    def check(text: str, index: int | None) -> None:
        if _NAME.fullmatch(text):
            return
        bad = next((c for c in text if not (c in "_.-" or c.isascii() and (c.islower() or c.isdigit()))), None)
        if bad is not None:
            raise _refuse(name, index, f"character {_char(bad)} in a user or group name "
                                       "(lower-case ASCII letters, digits and _.-)")
        raise _refuse(name, index, "not a user or group name (a lower-case letter or '_' first, at most 32 characters)")

    return _each(value, name, check)


def conf_line(value: Any, name: Any = "value") -> Any:
    """Free text on one line (or a list of lines): no newline, carriage return, NUL or any other
    control or format character, no template syntax."""
    return _each(value, name, lambda text, index: _no_control(text, name, index, "one line of text"))


def conf_quoted(value: Any, name: Any = "value") -> Any:
    """The inside of a double-quoted string (rsyslog, apt, nftables comments): one line that
    neither ends the string (\") nor starts an escape (\\)."""

    def check(text: str, index: int | None) -> None:
        _no_control(text, name, index, "a quoted string")
        for position, c in enumerate(text):
            if c in '"\\':
                raise _refuse(name, index, f"character {_char(c)} at position {position} would end or escape "
                                           "a quoted string")

    return _each(value, name, check)


def conf_int(value: Any, name: Any = "value") -> Any:
    """A non-negative integer: an int, or a string of ASCII digits only. Never a list: a number's
    place in a file takes one value."""

    def check(text: str, index: int | None) -> None:
        if not _DIGITS.fullmatch(text):
            bad = next((c for c in text if c not in string.digits), "")
            shown = f" (character {_char(bad)})" if bad else ""
            raise _refuse(name, index, f"expected a whole number{shown}")

    if isinstance(value, bool):
        raise _refuse(name, None, "expected a whole number, got a boolean")
    check(_scalar(value, name, None), None)
    return value


class FilterModule:
    """cityward filters guarding configuration files against injected structure."""

    def filters(self):
        return {"conf_word": conf_word, "conf_name": conf_name, "conf_line": conf_line,
                "conf_quoted": conf_quoted, "conf_int": conf_int}

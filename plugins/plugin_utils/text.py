"""What makes a string unfit to be one value of one line (issue 23, CW-RES-04), decided once for
the templates' filters, the host-variable gate and the zones policy's free text."""

from __future__ import annotations

import unicodedata

# Jinja's opening marks: a value holding one is a template, not data.
TEMPLATE_MARKS = ("{{", "{%", "{#")
# Control characters (newline, CR, NUL, escape, C1), invisible format characters (bidirectional
# overrides, zero-width) and the Unicode line and paragraph separators.
_BREAKING = ("Cc", "Cf", "Zl", "Zp")


def breaking_character(text: str, newlines: bool = False) -> tuple[int, str] | None:
    """(position, character) of the first character of `text` that could start a new line or hide
    what the line says; None when there is none. `newlines`: a '\\n' is allowed (banners, PEM)."""
    for position, char in enumerate(text):
        if char == "\n" and newlines:
            continue
        if unicodedata.category(char) in _BREAKING:
            return position, char
    return None


def template_mark(text: str) -> str | None:
    """The first template mark `text` holds, or None."""
    return next((mark for mark in TEMPLATE_MARKS if mark in text), None)

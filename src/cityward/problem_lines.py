"""Problems from the one-line errors of stages that report a CitywardError (the zones policy, the
catalog, the YAML loader, ansible-inventory): `PATH: ENTRY, field 'F': MESSAGE` or `PATH: MESSAGE`
back into a Problem, so that its text form is the line it came from (less the quotes of a field)."""

from __future__ import annotations

import re

from cityward.problems import Problem

# A leading path: a word with a slash or a YAML/JSON suffix, up to the first ': '.
_FILE = re.compile(r"^(?P<file>[^\s:][^:]*?(?:/[^:]*|\.(?:ya?ml|json|cfg|ini)))(?::\s+|:(?=\s*line\b))(?P<rest>.*)$")
# An entry with a space in its name ('control CW-SSH-01', "city 'Lab'"), then the field.
_ENTRY = re.compile(r"^(?P<entry>[^,:]+ [^,:]+), field '?(?P<field>[^':,]+)'?: (?P<message>.+)$")
_HOST = re.compile(r"^host (?P<host>[^\s,:]+)(?:, field '?(?P<field>[^':,]+)'?)?: (?P<message>.+)$")
_FIELD = re.compile(r"^field '?(?P<field>[^':,]+)'?: (?P<message>.+)$")


def problem_of(line: str, file: str | None = None) -> Problem:
    """The Problem one error line describes; `file` when the line names none (a line that starts
    with `file:` names it too, whatever its spelling)."""
    line = " ".join(line.split())  # one line, whatever the message held
    found = _FILE.match(line)
    if file and line.startswith(f"{file}: "):
        line = line[len(file) + 2:]
    elif found:
        file, line = found["file"], found["rest"].strip()
    for pattern in (_HOST, _FIELD, _ENTRY):
        parts = pattern.match(line)
        if parts:
            groups = parts.groupdict()
            return Problem(groups["message"], file=file, host=groups.get("host") or groups.get("entry"),
                           field=groups.get("field"))
    return Problem(line or "invalid input", file=file)

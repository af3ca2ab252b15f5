"""One problem with the input of a run: where it is (file, host or entry, field) and what is wrong.

Every input check (`cityward check`, the first play of site.yml, `cityward audit` before it
connects) reports a list of these. As text a problem is one line,
`FILE: host HOST, field FIELD: MESSAGE`; as JSON it is an object with the four keys, a key that
does not apply being null."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    host: str | None = None  # a host, or another named entry: "city 'Lab City'", "conduit 3"
    field: str | None = None

    def __str__(self) -> str:
        where = ", ".join(part for part in (
            f"host {self.host}" if self.host and " " not in self.host else self.host,
            f"field {self.field}" if self.field else None) if part)
        head = ": ".join(part for part in (self.file, where) if part)
        return f"{head}: {self.message}" if head else self.message

    def as_data(self) -> dict:
        return asdict(self)

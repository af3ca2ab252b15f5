"""The one error class for input an operator can fix, shared by the collection's plugins and the
cityward command (cityward.errors re-exports it), so either reports it as one line."""

from __future__ import annotations


class CitywardError(Exception):
    """A problem the operator can fix: bad input, a missing tool, a failed step. Its message is one
    line (or one line per problem) naming the file, the host or entry, and the field."""

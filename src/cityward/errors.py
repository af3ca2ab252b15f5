"""Errors cityward reports to the operator as one clear line, never as a traceback."""


class CitywardError(Exception):
    """A problem the operator can fix: bad input, a missing tool, a failed step."""

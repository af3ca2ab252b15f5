"""cityward: harden, segment and audit smart-city OT infrastructure."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cityward")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

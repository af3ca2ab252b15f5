"""Errors cityward reports to the operator as one clear line, never as a traceback.

The class lives in the collection (plugins/plugin_utils/errors.py) so that the zones filter and
the command raise and catch the same one."""

from ansible_collections.cityward.hardening.plugins.plugin_utils.errors import CitywardError

__all__ = ["CitywardError"]

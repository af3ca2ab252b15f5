"""The base of cityward's own records (pydantic models): a key the model does not know is an
error, never silently dropped (a misspelt field must not pass for a missing one), and a record
does not change once validated.

The collection's plugins keep their own copy (plugins/plugin_utils/zones.py): they run inside
Ansible, which never imports the cityward package.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

"""cityward.hardening.files: a role's managed files in one task and, when nothing changed, one remote call.

ansible.builtin.template and copy each run two modules on the host for a file that is already right
(stat for the checksum, then file for owner and mode), and a loop runs them per item. A second
run of site.yml spends about half its time there. This action renders every entry on the
controller, asks the host once (the files module, its host side) which files differ, and hands only
those to ansible.builtin.copy with the bytes it compared, so what is written is exactly what was
checked, and validate, check mode, diff mode and atomic writes behave as in copy.

Only public interfaces of ansible-core: ActionBase's own helpers, the Templar and DataLoader
methods, the copy action through the action loader. A template is rendered with the task's
variables plus the entry's `vars`; the template action's generated variables (template_path,
template_host, ...) are not offered, and `ansible_managed` only when the play sets it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible_collections.cityward.hardening.plugins.plugin_utils.file_mode import octal_mode

SOURCES = ("template", "src", "content")
KEYS = frozenset(SOURCES + ("dest", "owner", "group", "mode", "validate", "control", "vars"))


def check_entry(index: int, entry) -> dict:
    """The entry with its mode as an octal string; AnsibleActionFail naming the entry and field."""
    where = f"files[{index}]"
    if not isinstance(entry, dict):
        raise AnsibleActionFail(f"files: {where} must be a mapping, got {type(entry).__name__}")
    where = f"files[{index}] ({entry.get('dest', 'no dest')})"
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise AnsibleActionFail(f"files: {where}: unknown field(s) {', '.join(unknown)}")
    dest = entry.get("dest")
    if not isinstance(dest, str) or not dest.startswith("/"):
        raise AnsibleActionFail(f"files: {where}: field dest must be an absolute path")
    given = [key for key in SOURCES if key in entry]
    if len(given) != 1:
        raise AnsibleActionFail(f"files: {where}: give exactly one of {', '.join(SOURCES)}")
    if not isinstance(entry.get("vars", {}), dict):
        raise AnsibleActionFail(f"files: {where}: field vars must be a mapping of template variables")
    checked = dict(entry)
    if entry.get("mode") is not None:
        checked["mode"] = octal_mode(entry["mode"], f"files: {where}", "0644")
    return checked


class ActionModule(ActionBase):
    # The copy action this hands changed files to makes its own temporary folder when it needs one;
    # asking for one here would cost a remote call on every run.
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("files",))

    def _render(self, entry: dict, task_vars: dict) -> bytes:
        if "content" in entry:
            return to_bytes(entry["content"] or "", errors="surrogate_or_strict")
        if "src" in entry:
            with open(self._find_needle("files", entry["src"]), "rb") as handle:
                return handle.read()
        source = self._find_needle("templates", entry["template"])
        searchpath = list(task_vars.get("ansible_search_path", [])) + [self._loader.get_basedir(),
                                                                         os.path.dirname(source)]
        searchpath = [path for base in searchpath for path in (os.path.join(base, "templates"), base)]
        variables = dict(task_vars, **entry.get("vars", {}))
        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=variables)
        text = templar.template(trust_as_template(self._loader.get_text_file_contents(source)),
                                escape_backslashes=False,
                                overrides={"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"})
        return to_bytes(text or "", errors="surrogate_or_strict")

    def _write(self, index: int, entry: dict, data: bytes, folder: str, task_vars: dict) -> dict:
        """Hand one differing file to ansible.builtin.copy, with the bytes that were compared."""
        local = os.path.join(folder, f"{index}-{os.path.basename(entry['dest'])}")
        with open(local, "wb") as handle:
            handle.write(data)
        task = self._task.copy()
        task.args = {"src": local, "dest": entry["dest"],
                     **{key: entry[key] for key in ("owner", "group", "mode", "validate") if key in entry}}
        copy = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.copy", task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        return copy.run(task_vars=task_vars)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        files = self._task.args.get("files")
        if not isinstance(files, list) or not files:
            raise AnsibleActionFail("files: field files must be a non-empty list of files")
        entries = [check_entry(index, entry) for index, entry in enumerate(files)]
        try:
            rendered = [self._render(entry, task_vars) for entry in entries]
        except AnsibleError as exc:
            raise AnsibleActionFail(f"files: {exc}") from exc

        # sha1: the checksum ansible.builtin.copy compares with, so both agree on "the same file".
        wanted = [{"dest": entry["dest"], "owner": entry.get("owner"), "group": entry.get("group"),
                   "mode": entry.get("mode"), "size": len(data),
                   "checksum": hashlib.sha1(data, usedforsecurity=False).hexdigest()}
                  for entry, data in zip(entries, rendered, strict=True)]
        state = self._execute_module("cityward.hardening.files", module_args={"files": wanted},
                                     task_vars=task_vars)
        if state.get("failed"):
            return state

        rows, diffs = [], []
        folder = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP)
        try:
            for index, (entry, data, differs) in enumerate(zip(entries, rendered, state["differs"], strict=True)):
                row = {"dest": entry["dest"], "control": entry.get("control"), "changed": False, "differs": differs}
                rows.append(row)
                if differs is None:
                    continue
                written = self._write(index, entry, data, folder, task_vars)
                if written.get("failed"):
                    result.update(failed=True, files=rows, changed=any(r["changed"] for r in rows),
                                  msg=f"{entry['dest']} ({entry.get('control') or 'no control'}): "
                                      f"{to_text(written.get('msg', 'copy failed'))}")
                    row["failed"] = True
                    return result
                row["changed"] = bool(written.get("changed"))
                if written.get("diff"):
                    diffs.extend(written["diff"] if isinstance(written["diff"], list) else [written["diff"]])
        finally:
            # The remote temporary folder, if a module run made one, goes in ActionBase.cleanup(),
            # which the task executor calls after run().
            shutil.rmtree(folder, ignore_errors=True)
        result.update(changed=any(row["changed"] for row in rows), files=rows)
        if diffs:
            result["diff"] = diffs
        return result

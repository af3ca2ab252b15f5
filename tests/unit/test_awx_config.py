"""awx/configure.yml, the AWX configuration as code (docs/awx-slicing.md), without an AWX: it passes
Ansible's syntax check; it declares the six job templates with the playbook, job type and slice
count each must have, harden and harden --check sliced from one variable that also sets the slicing
contract's cityward_job_slices; each playbook it names is a file of awx/city-repo that imports the
right collection playbook; secrets come only from the operator and are no_log; and its plan, run
with Ansible, renders those values, or refuses missing inputs in one line before AWX is contacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGURE = ROOT / "awx" / "configure.yml"
CITY_REPO = ROOT / "awx" / "city-repo"
PLAYBOOK_BIN = Path(sys.executable).parent / "ansible-playbook"
SLICES = "{{ cityward_awx_job_slices | int }}"
# name (after the city) -> (playbook in the city's repo, collection playbook it imports, job type, sliced)
EXPECTED = {
    "harden --check": ("cityward-site.yml", "cityward.hardening.site", "check", True),
    "harden": ("cityward-site.yml", "cityward.hardening.site", "run", True),
    "audit": ("cityward-audit.yml", "cityward.hardening.audit", "run", False),
    "isolate": ("cityward-isolate.yml", "cityward.hardening.isolate", "run", False),
    "restore": ("cityward-restore.yml", "cityward.hardening.restore", "run", False),
    "recover": ("cityward-recover.yml", "cityward.hardening.recover", "run", False),
    "patch": ("cityward-patch.yml", "cityward.hardening.patch", "run", False),
}


@pytest.fixture(scope="module")
def play() -> dict:
    (only,) = yaml.safe_load(CONFIGURE.read_text())
    return only


def _tasks(play: dict, module: str) -> list[dict]:
    return [task for task in play["tasks"] if module in task]


def _templates(play: dict) -> dict[str, dict]:
    return {t["name"].removeprefix("{{ _city }} "): t for t in play["vars"]["_job_templates"]}


@pytest.fixture(scope="module")
def operator_cfg(tmp_path_factory) -> Path:
    """An operator's own ansible.cfg: not this repo's (its lab inventory, its timing callback)."""
    path = tmp_path_factory.mktemp("operator") / "ansible.cfg"
    path.write_text("[defaults]\nretry_files_enabled = false\n")
    return path


def _run(cfg: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "ANSIBLE_CONFIG": str(cfg), "ANSIBLE_NOCOLOR": "1", **(env or {})}
    for name in ("CONTROLLER_HOST", "CONTROLLER_OAUTH_TOKEN", "CITYWARD_AWX_VAULT_PASSWORD_FILE",
                 "CITYWARD_AWX_SSH_KEY_FILE"):
        if not (env and name in env):
            environment.pop(name, None)
    return subprocess.run([str(PLAYBOOK_BIN), "-i", "localhost,", *args, str(CONFIGURE)], capture_output=True,
                          text=True, cwd=ROOT, env=environment, timeout=300, check=False)


def test_syntax_check_passes(operator_cfg):
    result = _run(operator_cfg, "--syntax-check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_declares_each_job_template_with_its_playbook_type_and_slices(play):
    templates = _templates(play)
    assert set(templates) == set(EXPECTED)
    for name, (playbook, _, job_type, sliced) in EXPECTED.items():
        template = templates[name]
        assert template["playbook"] == playbook, name
        assert template["job_type"] == job_type, name
        assert template["diff_mode"] is (name == "harden --check"), name
        if sliced:  # job_slice_count and the contract's cityward_job_slices come from one variable
            assert template["job_slice_count"] == SLICES, name
            assert template["extra_vars"] == ("{{ _contract | combine({'cityward_job_slices': "
                                              "cityward_awx_job_slices | int}) }}"), name
        else:
            assert template["job_slice_count"] == 1, name
            assert template["extra_vars"] == "{{ _contract | combine({'cityward_job_slices': 1}) }}", name
    assert play["vars"]["_contract"] == {"cityward_inventory_dir": "inventories/{{ _city }}"}
    assert {name for name, t in templates.items() if "survey" in t} == {"isolate", "restore"}
    (task,) = _tasks(play, "awx.awx.job_template")
    assert task["loop"] == "{{ _job_templates }}"
    # Whatever a job template says, the module gets it, and never prompts for a slice count or extra vars.
    for field in ("playbook", "job_type", "diff_mode", "job_slice_count", "extra_vars"):
        assert task["awx.awx.job_template"][field] == f"{{{{ item.{field} }}}}"
    assert task["awx.awx.job_template"]["ask_job_slice_count_on_launch"] is False
    assert task["awx.awx.job_template"]["ask_variables_on_launch"] is False
    assert "isolate_hosts" in task["awx.awx.job_template"]["survey_spec"]


@pytest.mark.parametrize("name", sorted({v[0] for v in EXPECTED.values()}))
def test_each_playbook_is_one_import_of_the_collection_playbook(name):
    """AWX runs a project's file: the one in awx/city-repo imports the collection's playbook."""
    wanted = next(v[1] for v in EXPECTED.values() if v[0] == name)
    (entry,) = yaml.safe_load((CITY_REPO / name).read_text())
    assert set(entry) == {"name", "ansible.builtin.import_playbook"}
    assert entry["ansible.builtin.import_playbook"] == wanted
    assert (ROOT / "playbooks" / f"{wanted.rsplit('.', 1)[1]}.yml").is_file()
    result = subprocess.run([str(PLAYBOOK_BIN), "-i", "localhost,", "--syntax-check", str(CITY_REPO / name)],
                            capture_output=True, text=True, cwd=CITY_REPO, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_project_inventory_ee_and_credentials_are_declared(play):
    modules = {module for task in play["tasks"] for module in task if module.startswith("awx.awx.")}
    assert modules == {"awx.awx.organization", "awx.awx.execution_environment", "awx.awx.project",
                       "awx.awx.inventory", "awx.awx.inventory_source", "awx.awx.credential",
                       "awx.awx.job_template"}
    (source,) = _tasks(play, "awx.awx.inventory_source")
    assert source["awx.awx.inventory_source"]["source"] == "scm"
    assert source["awx.awx.inventory_source"]["source_path"] == "inventories/{{ _city }}"
    credentials = _tasks(play, "awx.awx.credential")
    assert sorted(t["awx.awx.credential"]["credential_type"] for t in credentials) == ["Machine", "Vault"]
    assert all(t.get("no_log") is True for t in credentials)
    # No secret in the file: the secret inputs are expressions over the operator's variables.
    for task in credentials:
        for key, value in task["awx.awx.credential"]["inputs"].items():
            if key in ("vault_password", "ssh_key_data"):
                assert value.strip().startswith("{{") and "lookup('ansible.builtin.file'" in value, key
    assert "controller_host: \"{{ controller_host | default(omit) }}\"" in CONFIGURE.read_text()


def test_the_plan_renders_the_job_templates_ansible_would_send(tmp_path, operator_cfg):
    (tmp_path / "vault").write_text("not-a-real-password\n")
    (tmp_path / "key").write_text("not-a-real-key\n")
    result = _run(operator_cfg, "--tags", "plan", "-e", "cityward_awx_city=riverton", "-e", "cityward_awx_scm_url=https://git/r.git",
                  "-e", "cityward_awx_ee_image=registry/cityward-ee:0.2.0", "-e", "cityward_awx_job_slices=3",
                  env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                       "CITYWARD_AWX_VAULT_PASSWORD_FILE": str(tmp_path / "vault"),
                       "CITYWARD_AWX_SSH_KEY_FILE": str(tmp_path / "key")})
    assert result.returncode == 0, result.stdout + result.stderr
    tasks = json.loads(result.stdout)["plays"][0]["tasks"]
    assert [t["task"]["name"] for t in tasks] == ["Refuse missing or malformed inputs before AWX is contacted",
                                                  "Show the job templates this city gets (--tags plan stops here)"]
    rendered = {t["name"]: t for t in tasks[1]["hosts"]["localhost"]["msg"]}
    assert set(rendered) == {f"riverton {name}" for name in EXPECTED}
    for name, (playbook, _, job_type, sliced) in EXPECTED.items():
        template = rendered[f"riverton {name}"]
        assert (template["playbook"], template["job_type"]) == (playbook, job_type)
        assert int(template["job_slice_count"]) == (3 if sliced else 1)
        assert template["extra_vars"] == {"cityward_inventory_dir": "inventories/riverton",
                                          "cityward_job_slices": 3 if sliced else 1}
    assert "not-a-real" not in result.stdout + result.stderr


def test_missing_inputs_are_refused_in_one_line_before_awx_is_contacted(operator_cfg):
    result = _run(operator_cfg, "-e", "cityward_awx_city=River Town", "-e", "cityward_awx_job_slices=two",
                  env={"CONTROLLER_HOST": "https://127.0.0.1:9"})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    refused = [line for line in output.splitlines() if line.startswith("[ERROR]") and "configure.yml refused" in line]
    assert len(refused) == 1, output
    for name in ("cityward_awx_city", "cityward_awx_scm_url", "cityward_awx_ee_image", "cityward_awx_job_slices",
                 "CITYWARD_AWX_VAULT_PASSWORD_FILE", "CITYWARD_AWX_SSH_KEY_FILE"):
        assert name in refused[0]
    assert "The organization" not in output and "Traceback" not in output


@pytest.mark.control("CW-RES-02")
def test_the_recover_job_asks_which_hosts_to_rebuild(play):
    # recover.yml refuses a run without --limit: the job template asks for one at every launch.
    recover = _templates(play)["recover"]
    assert recover["ask_limit_on_launch"] is True and "survey" not in recover

"""The record of what a role applied: written by the filter, read back by the checks, and every
way it can be wrong (absent, foreign owner, writable, edited, renamed) read as evidence missing."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.cityward.hardening.plugins.filter.applied import applied_fact
from ansible_collections.cityward.hardening.plugins.plugin_utils.applied import EvidenceMissing, read

from cityward.checks.applied import Recorded, settings_from

SETTINGS = {"sysctls": {"net.ipv4.ip_forward": "0"}, "blocked_modules": ["dccp", "sctp"], "field_device": False}
ROOT = (0, "root root 644\n")


def test_written_record_reads_back_as_the_settings():
    text = applied_fact(SETTINGS, "kernel")
    assert settings_from("kernel", ROOT, (0, text)) == SETTINGS
    assert text.endswith("\n") and json.loads(text)["role"] == "kernel"


def test_the_record_is_the_same_whatever_the_key_order():
    reordered = dict(reversed(list(SETTINGS.items())))
    assert applied_fact(reordered, "kernel") == applied_fact(SETTINGS, "kernel")


@pytest.mark.parametrize(("stat", "text", "says"), [
    ((1, "stat: cannot statx: No such file or directory"), (1, ""), "is absent"),
    ((0, "operator root 644"), (0, "{}"), "must be root:root"),
    ((0, "root root 666"), (0, "{}"), "writable by root only"),
    ((0, "root root 640"), (1, "cat: Permission denied"), "cannot be read"),
    (ROOT, (0, '{"settings": '), "is not JSON"),
])
def test_a_record_that_cannot_be_trusted_is_evidence_missing(stat, text, says):
    with pytest.raises(EvidenceMissing, match=says):
        settings_from("kernel", stat, text)


def test_a_value_edited_by_hand_breaks_the_seal():
    document = json.loads(applied_fact(SETTINGS, "kernel"))
    document["settings"]["sysctls"]["net.ipv4.ip_forward"] = "1"
    with pytest.raises(EvidenceMissing, match="edited by hand"):
        read("kernel", json.dumps(document))


def test_a_record_copied_to_another_role_is_refused():
    with pytest.raises(EvidenceMissing, match="records role 'kernel', not 'ssh'"):
        read("ssh", applied_fact(SETTINGS, "kernel"))


def test_the_filter_refuses_what_is_not_plain_data_naming_the_role():
    with pytest.raises(AnsibleFilterError, match=r"applied_fact\('kernel'\)"):
        applied_fact({"when": object()}, "kernel")
    with pytest.raises(AnsibleFilterError, match="not a role name"):
        applied_fact(SETTINGS, "Kernel role")


def test_a_key_an_older_record_lacks_fails_as_evidence_missing_naming_it():
    recorded = Recorded("kernel", SETTINGS)
    assert recorded["field_device"] is False and recorded.get("usbguard") is None
    with pytest.raises(pytest.fail.Exception, match=r"evidence missing: .*cityward_kernel.fact records no 'usbguard'"):
        recorded["usbguard"]

"""Change control (CW-GOV-10): the newest apply run that targeted the host left a change record
that ended, did not fail on the host, and ran from a committed inventory after a --check --diff
run of the same inputs, or says why it went ahead without (an override's reason).

The records are the ones the change gate of playbooks/check.yml writes on the controller
(cityward.changes), in the records folder of the inventory the host is audited from
(cityward_change_records_dir, else records/changes): the audit reads them, never the host.
"""

from __future__ import annotations

import pytest

from cityward.changes import inventory_folder, judge_host, read_records, records_dir


@pytest.mark.control("CW-GOV-10")
def test_the_last_change_was_dry_run_recorded_and_completed(hostvars, inventory_path):
    folder = records_dir(inventory_folder(inventory_path), hostvars.get("cityward_change_records_dir"))
    records, unreadable = read_records(folder)
    problem = judge_host(hostvars["inventory_hostname"], records, unreadable, folder)
    if problem:
        pytest.fail(f"{hostvars['inventory_hostname']}: {problem}", pytrace=False)

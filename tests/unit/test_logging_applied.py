"""The records of roles logging and siem_receiver (issue 18): what each role records applying, after
every inventory override, rendered by real Ansible templating from the roles' own defaults and
vars (one ansible-playbook on localhost for all cases); never a secret in it; and the checks of
src/cityward/checks/test_logging.py judging a host against that record, not against defaults."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from ansible_collections.cityward.hardening.plugins.plugin_utils.applied import read
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from local_play import ROOT, playbook

from cityward.checks import test_logging as checks
from cityward.log_settings import log_retention, role_default_retention, span_days

SECRET_KEY = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----"  # noqa: S105 (a fake)
CERT = "-----BEGIN CERTIFICATE-----\nCERTIFICATE-BODY\n-----END CERTIFICATE-----"
RETENTIONS = ["90day", "1year", "6month", "2week", "12h", "90min", "3600s"]
CASES = {
    "defaults": ("logging", {}),
    "city": ("logging", {
        "cityward_siem_host": "siem.city.example", "logging_siem_port": 10514, "logging_queue_max_disk": "256m",
        "cityward_log_retention": "1year", "logging_tls_key": SECRET_KEY, "logging_tls_cert": CERT,
        "cityward_log_ca_cert": CERT, "cityward_ntp_servers": [{"host": "ntp1.city.example", "nts": True}],
        "cityward_ntp_reachable": False, "logging_audit_immutable": False,
        "logging_journal_system_max_use": "4G",
    }),
    "role_wins": ("logging", {"cityward_siem_host": "10.40.48.10", "logging_siem_host": "",
                              "cityward_log_retention": "1year", "logging_journal_max_retention": "30day"}),
    "peer_name": ("logging", {"logging_siem_host": "10.40.48.10", "logging_siem_peer_name": "siem-01.city.example"}),
    **{f"retention_{value}": ("logging", {"logging_journal_max_retention": value}) for value in RETENTIONS},
    "receiver": ("siem_receiver", {"siem_receiver_permitted_peers": ["plc-02", "hist-01"], "siem_receiver_port": 10514,
                                   "siem_receiver_tls_key": SECRET_KEY, "siem_receiver_tls_cert": CERT}),
}


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict[str, str]:
    """Each case's fact file text, as the role's record task would write it."""
    lab = tmp_path_factory.mktemp("records")
    plays = []
    for name, (role, overrides) in CASES.items():
        plays.append({
            "name": name, "hosts": "localhost", "gather_facts": False,
            "vars_files": [str(ROOT / "roles" / role / "defaults" / "main.yml"),
                           str(ROOT / "roles" / role / "vars" / "main.yml")],
            "tasks": [{"name": f"Record {name}", "ansible.builtin.copy": {
                "content": f"{{{{ _{role}_applied | cityward.hardening.applied_fact('{role}') }}}}",
                "dest": str(lab / f"{name}.fact"), "mode": "0600"}, "vars": overrides}],
        })
    (lab / "play.yml").write_text(yaml.safe_dump(plays))
    proc = playbook(lab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {name: (lab / f"{name}.fact").read_text() for name in CASES}


def settings(records, name):
    return read(CASES[name][0], records[name])


def test_the_defaults_are_recorded_as_applied(records):
    got = settings(records, "defaults")
    assert got["siem_host"] == "" and got["siem_port"] == 6514 and got["forward_selector"] == "*.*"
    assert got["journal_max_retention"] == "90day" and got["journal_max_retention_days"] == 90
    assert got["audit_immutable"] is True and got["ntp_reachable"] is True
    assert got["ntp_servers"] and all(isinstance(name, str) for name in got["ntp_servers"])


def test_inventory_overrides_are_recorded_and_no_secret(records):
    got = settings(records, "city")
    assert got == {
        "siem_host": "siem.city.example", "siem_port": 10514, "siem_peer_name": "siem.city.example",
        "forward_selector": "*.*", "queue_max_disk": "256m", "journal_max_retention": "1year",
        "journal_max_retention_days": 365.25, "journal_system_max_use": "4G", "audit_immutable": False,
        "ntp_servers": ["ntp1.city.example"], "ntp_reachable": False,
    }
    for name in ("city", "receiver"):
        assert "TOP-SECRET" not in records[name] and "CERTIFICATE-BODY" not in records[name]


def test_the_roles_own_variable_wins_over_the_citys(records):
    got = settings(records, "role_wins")
    assert got["siem_host"] == ""
    assert got["journal_max_retention"] == "30day" and got["journal_max_retention_days"] == 30
    assert settings(records, "peer_name")["siem_peer_name"] == "siem-01.city.example"


@pytest.mark.parametrize("value", RETENTIONS)
def test_recorded_days_agree_with_the_pre_run_reading(records, value):
    """The role's days and `cityward check`'s (span_days) use one definition of systemd's units."""
    recorded = settings(records, f"retention_{value}")["journal_max_retention_days"]
    assert recorded == pytest.approx(span_days(value), abs=0.01)


def test_receiver_records_its_port_and_sorted_peers(records):
    assert settings(records, "receiver") == {"port": 10514, "permitted_peers": ["hist-01", "plc-02"],
                                             "log_dir": "/var/log/siem",
                                             "cert_file": "/etc/cityward/tls/siem-receiver.pem"}


def test_pre_run_default_is_the_roles_documented_one():
    """No copied constant: the argument specs' default, the same word defaults/main.yml falls back to."""
    defaults = (ROOT / "roles" / "logging" / "defaults" / "main.yml").read_text()
    fallback = re.search(r"^logging_journal_max_retention: .*default\('([^']+)'\)", defaults, re.MULTILINE)[1]
    assert role_default_retention() == fallback
    assert log_retention({}) == (span_days(fallback), f"the logging role's default '{fallback}'")


# --- the checks judge the host against the record ------------------------------------------

RECORD = {"siem_host": "siem.city.example", "siem_port": 10514, "siem_peer_name": "siem.city.example",
          "forward_selector": "*.*", "queue_max_disk": "256m", "journal_max_retention": "1year",
          "journal_max_retention_days": 365.25, "journal_system_max_use": "1G", "audit_immutable": True,
          "ntp_servers": ["ntp1.city.example"], "ntp_reachable": True}
RSYSLOG = """module(load="imjournal")
*.* action(
    type="omfwd" target="siem.city.example" port="{port}" protocol="tcp"
    StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
    StreamDriverPermittedPeers="siem.city.example"
    queue.type="LinkedList" queue.filename="cityward-siem" queue.maxDiskSpace="256m"
    queue.saveOnShutdown="on" action.resumeRetryCount="-1"
)
"""


def test_forwarding_check_follows_the_recorded_port():
    state = {"rsyslog_conf": (0, RSYSLOG.format(port=10514)), "rsyslog_check": (0, "")}
    checks.test_rsyslog_forwards_everything_over_mutual_tls_with_a_disk_queue(state, RECORD)
    state["rsyslog_conf"] = (0, RSYSLOG.format(port=6514))  # the role default, not what was applied
    with pytest.raises(AssertionError, match=r"port.*expected '10514', found '6514'"):
        checks.test_rsyslog_forwards_everything_over_mutual_tls_with_a_disk_queue(state, RECORD)


def _device(days):
    review = {"date": "2026-01-10", "reference": "RR-7", "data_retention_days": days}
    return {"cityward_device": {"risk_review": review}}


def test_retention_check_compares_the_applied_retention_with_the_risk_review():
    journald = {"MaxRetentionSec": "1year"}
    checks.test_journal_is_kept_no_longer_than_the_risk_review_allows(journald, RECORD, _device(365))
    with pytest.raises(AssertionError, match=r"at most the 180 days set by risk review RR-7"):
        checks.test_journal_is_kept_no_longer_than_the_risk_review_allows(journald, RECORD, _device(180))
    with pytest.raises(AssertionError, match=r"expected '1year' \(applied by the logging role\), found '3year'"):
        checks.test_journal_is_kept_no_longer_than_the_risk_review_allows({"MaxRetentionSec": "3year"}, RECORD,
                                                                         _device(365))
    with pytest.raises(pytest.skip.Exception):
        checks.test_journal_is_kept_no_longer_than_the_risk_review_allows(journald, RECORD, {"cityward_device": "x"})


def test_receiver_check_reads_the_recorded_peers():
    conf = ('module(load="imtcp" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/name"\n'
            '       PermittedPeer=["hist-01", "plc-02"])\ninput(type="imtcp" port="10514" name="x")\n')
    record = {"port": 10514, "permitted_peers": ["hist-01", "plc-02"], "log_dir": "/var/log/siem"}
    checks.test_siem_receiver_accepts_only_its_permitted_peers_over_tls({"receiver_conf": (0, conf)}, record)
    with pytest.raises(AssertionError, match="PermittedPeer: expected"):
        checks.test_siem_receiver_accepts_only_its_permitted_peers_over_tls(
            {"receiver_conf": (0, conf)}, dict(record, permitted_peers=["hist-01"]))


def _certificate(days: int, dns: bool = True) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hist-01")])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=30))
               .not_valid_after(now + timedelta(days=days)))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("hist-01")]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(("days", "dns", "hostvars", "error"), [
    (40, True, {}, None), (-1, True, {}, "expired"), (40, False, {}, "no DNS name"),
    # Inside the renewal threshold: 30 days unless the inventory says otherwise.
    (10, True, {}, "inside the renewal threshold of 30 days"),
    (10, True, {"cityward_certificate_renew_days": 5}, None),
    (3, True, {"cityward_certificate_renew_days": "5"}, "inside the renewal threshold of 5 days"),
])
def test_client_certificate_is_read_without_private_apis(days, dns, hostvars, error):
    state = {"tls_key_mode": (0, "root root 600\n"), "tls_cert": (0, _certificate(days, dns))}
    if error is None:
        checks.test_client_certificate_valid_and_key_root_only(state, RECORD, hostvars)
    else:
        with pytest.raises(AssertionError, match=error):
            checks.test_client_certificate_valid_and_key_root_only(state, RECORD, hostvars)


@pytest.mark.parametrize("value", [-1, "thirty", True, 1.5])
def test_a_renewal_threshold_that_is_not_whole_days_fails_the_check_naming_it(value):
    state = {"tls_key_mode": (0, "root root 600\n"), "tls_cert": (0, _certificate(40))}
    with pytest.raises(pytest.fail.Exception, match="cityward_certificate_renew_days must be a whole number"):
        checks.test_client_certificate_valid_and_key_root_only(state, RECORD,
                                                               {"cityward_certificate_renew_days": value})

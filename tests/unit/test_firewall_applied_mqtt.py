"""The mqtt_gateway role's record of what it applied (cityward_mqtt_gateway.fact), rendered by real
Ansible templating from the role's own defaults and vars with a city's overrides, next to the
mosquitto.conf and ACL file the role's templates render from the same values: the record holds
the overrides, agrees with both files as the checks (cityward.checks.test_mqtt) read them, and
never holds the server key."""

from __future__ import annotations

import json

import pytest
import yaml
from local_play import ROOT, playbook

import cityward.checks.test_mqtt as mqtt
from cityward.checks.applied import settings_from

ROLE = ROOT / "roles" / "mqtt_gateway"
KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINOTAREALKEYNOTAREALKEYNOTAREALKEY00\n-----END PRIVATE KEY-----"
RECORD = "{{ _mqtt_gateway_applied | cityward.hardening.applied_fact('mqtt_gateway') }}"
OVERRIDES = {
    "mqtt_gateway_port": 18883,
    "mqtt_gateway_tls_version": "tlsv1.3",
    "mqtt_gateway_max_connections": 64,
    "mqtt_gateway_server_key": KEY,
    "mqtt_gateway_acls": [
        {"user": "scada", "read": ["city/telemetry/#"], "write": ["city/commands/#"]},
        {"user": "sensor-north", "write": ["city/telemetry/north/#"], "readwrite": ["city/ops/north/+"]},
    ],
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[dict, str, str, str]:
    """(record settings, record text, mosquitto.conf text, ACL text) for OVERRIDES."""
    lab = tmp_path_factory.mktemp("mqtt")
    (lab / "overrides.json").write_text(json.dumps(OVERRIDES))
    play = [{"hosts": "localhost", "gather_facts": False,
             # The role's precedence: its defaults under its vars; the city's values come as extra vars.
             "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
             "tasks": [
                 {"ansible.builtin.copy": {"content": RECORD, "dest": str(lab / "record.fact"), "mode": "0644"}},
                 {"ansible.builtin.template": {"src": str(ROLE / "templates" / "mosquitto.conf.j2"),
                                               "dest": str(lab / "mosquitto.conf"), "mode": "0644"}},
                 {"ansible.builtin.template": {"src": str(ROLE / "templates" / "acl.j2"),
                                               "dest": str(lab / "acl"), "mode": "0640"}}]}]
    (lab / "play.yml").write_text(yaml.safe_dump(play))
    proc = playbook(lab, "-e", f"@{lab / 'overrides.json'}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (lab / "record.fact").read_text()
    record = settings_from("mqtt_gateway", (0, "root root 644"), (0, text))
    return record, text, (lab / "mosquitto.conf").read_text(), (lab / "acl").read_text()


def test_the_record_holds_what_the_checks_read_with_the_overrides(rendered):
    record, *_ = rendered
    assert set(record) == mqtt.RECORDED
    assert (record["port"], record["tls_version"], record["max_connections"]) == (18883, "tlsv1.3", 64)
    assert record["max_keepalive"] == 300 and isinstance(record["max_packet_size"], int)
    assert record["acls"] == OVERRIDES["mqtt_gateway_acls"]


def test_the_record_never_holds_the_key(rendered):
    _, text, *_ = rendered
    assert "PRIVATE KEY" not in text and "NOTAREALKEY" not in text


def test_the_record_agrees_with_the_configuration_the_templates_render(rendered):
    record, _, conf_text, acl_text = rendered
    conf = mqtt.directives(conf_text)
    assert mqtt.values(conf, "listener") == [str(record["port"])]
    assert mqtt.values(conf, "tls_version") == [record["tls_version"]]
    assert mqtt.values(conf, "ciphers") == [record["ciphers"]]
    assert mqtt.values(conf, "ciphers_tls1.3") == [record["ciphers_tls13"]]
    for name in ("cafile", "certfile", "keyfile", "acl_file"):
        assert mqtt.values(conf, name) == [record[name]], name
    for name in ("max_connections", "max_packet_size", "max_keepalive"):
        assert mqtt.values(conf, name) == [str(record[name])], name
    assert mqtt.granted_topics(acl_text) == mqtt.declared_topics(record["acls"])


def test_an_acl_that_differs_from_the_record_is_seen(rendered):
    record, *_ = rendered
    widened = dict(record["acls"][1], write=["city/#"])
    assert mqtt.declared_topics([record["acls"][0], widened]) != mqtt.declared_topics(record["acls"])
    with pytest.raises(AssertionError, match="a rule outside a client's block"):
        mqtt.granted_topics("topic readwrite #\nuser scada\ntopic read city/#\n")


def test_the_record_is_the_roles_last_task_tagged_for_every_check_that_reads_it():
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    last = tasks[-1]
    assert last["name"] == "CW-MQTT-01 | Record the settings this run applied (read by the audit)"
    entry = last["cityward.hardening.files"]["files"][0]
    assert entry["dest"] == "/etc/ansible/facts.d/cityward_mqtt_gateway.fact"
    assert "applied_fact('mqtt_gateway')" in entry["content"]
    assert (entry["owner"], entry["group"], entry["mode"]) == ("root", "root", "0644")
    assert set(last["tags"]) == {"CW-MQTT-01", "CW-MQTT-02", "CW-MQTT-03"}
    assert any(t.get("ansible.builtin.meta") == "flush_handlers" for t in tasks[:-1])


def test_the_record_the_template_and_the_tasks_take_the_paths_from_one_place():
    paths = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    record = paths["_mqtt_gateway_applied"]
    named = ("cafile", "certfile", "keyfile", "acl_file")
    assert {key: record[key] for key in named} == {key: f"{{{{ _mqtt_gateway_{key} }}}}" for key in named}
    tasks = (ROLE / "tasks" / "main.yml").read_text()
    template = (ROLE / "templates" / "mosquitto.conf.j2").read_text()
    for key in named:
        assert paths[f"_mqtt_gateway_{key}"] not in tasks + template, f"{key}: a literal path besides vars/main.yml"
        assert f"_mqtt_gateway_{key}" in template

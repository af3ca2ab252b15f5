"""Render an AuditResult as JUnit XML (for CI): one testsuite per host, one testcase per control
assessed on it.

A failed control is a <failure> (one whose waiver expired too, saying so); not applicable and
skipped controls are <skipped> with their reason; a waived control is <skipped> whose message
starts "waived:" with the waiver's reason, approver and expiry, and the testcase's properties
carry them one by one (JUnit has no such outcome, and a waived control must not count as
passed); an unreachable host is a single <error> testcase. Controls with no check on the host
(not assessed, e.g. planned) are left out: CI shows what was checked.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from cityward.audit.aggregate import AuditResult, Status

MAX_MESSAGE = 1000
# Characters XML 1.0 cannot carry at all (terminal escapes in a failure message, for example).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str, limit: int | None = None) -> str:
    text = _NOT_XML.sub("?", text or "")
    return text[:limit] if limit else text


def _junit_time(stamp: str) -> str:
    # JUnit's timestamp is an xs:dateTime without a zone designator (the run's times are UTC).
    return stamp.removesuffix("Z").split("+")[0]


def _waived(case: ET.Element, cell: dict) -> None:
    waiver = cell["waiver"]
    properties = ET.SubElement(case, "properties")
    for key in ("reason", "approver", "expires", "ticket"):
        if waiver.get(key):
            ET.SubElement(properties, "property", name=f"waiver.{key}", value=_clean(str(waiver[key])))
    ET.SubElement(properties, "property", name="waiver.found", value=str(cell["found"]["status"]))
    skipped = ET.SubElement(case, "skipped", type="waived", message=_clean(cell["reason"], MAX_MESSAGE))
    skipped.text = _clean(cell["reason"])


def render(result: AuditResult) -> str:
    """The XML document, as text."""
    run, catalog, data = result.run, result.catalog, result.facts
    root = ET.Element("testsuites", name=f"cityward audit {run.inventory}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for host in run.hosts:
        zone = host.zone or "no-zone"
        suite = ET.SubElement(root, "testsuite", name=host.name, hostname=host.name,
                              timestamp=_junit_time(run.started))
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="zone", value=zone)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
        if not host.reachable:
            case = ET.SubElement(suite, "testcase", classname=f"cityward.{zone}.{host.name}",
                                 name="host reachable", time="0")
            error = ET.SubElement(case, "error", type="unreachable",
                                  message=_clean(host.error or "unreachable", MAX_MESSAGE))
            error.text = _clean(host.error or "unreachable")
            counts["tests"] += 1
            counts["errors"] += 1
        else:
            for control in catalog.controls:
                cell = data["controls"][control.id]["hosts"][host.name]
                if cell["status"] == Status.NOT_ASSESSED:
                    continue
                duration = float(cell.get("duration", 0.0))
                case = ET.SubElement(suite, "testcase", classname=f"cityward.{zone}.{host.name}",
                                     name=_clean(f"{control.id} {control.title}"), time=f"{duration:.3f}")
                counts["tests"] += 1
                counts["time"] += duration
                if cell["status"] == Status.FAILED:
                    failure = ET.SubElement(case, "failure", message=_clean(cell["reason"], MAX_MESSAGE),
                                            type="mandatory" if control.mandatory else "advisory")
                    failure.text = _clean(cell["reason"])
                    counts["failures"] += 1
                elif cell["status"] in (Status.NOT_APPLICABLE, Status.SKIPPED):
                    reason = cell["reason"] or cell["status"].replace("_", " ")
                    ET.SubElement(case, "skipped", message=_clean(reason, MAX_MESSAGE))
                    counts["skipped"] += 1
                elif cell["status"] == Status.WAIVED:
                    _waived(case, cell)
                    counts["skipped"] += 1
        for key, value in counts.items():
            suite.set(key, f"{value:.3f}" if key == "time" else str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, f"{value:.3f}" if key == "time" else str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"

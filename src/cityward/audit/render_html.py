"""Render an AuditResult as the HTML report: one self-contained page (inline CSS, inline SVG
charts, no external assets) that an auditor can open offline, mail or archive as evidence.
A waived control shows as "waived" wherever a status does, with the waiver's reason, approver
and expiry and what the checks found; the Waivers section lists every waiver of the city. The
scanners section shows each host's ssh-audit and Lynis runs and every finding beside its control
(mapped, waived or unmapped); a host's control row names the scanner findings mapped to it."""

from __future__ import annotations

from html import escape

from cityward.audit.aggregate import NO_ZONE, STATUSES, AuditResult, Status
from cityward.audit.model import AuditRun

LABELS = {
    Status.PASSED: "passed", Status.FAILED: "failed", Status.WAIVED: "waived", Status.NOT_APPLICABLE: "n/a",
    Status.SKIPPED: "skipped", Status.UNREACHABLE: "unreachable", Status.NOT_ASSESSED: "not assessed",
}
COLOURS = {
    Status.PASSED: "#2e7d32", Status.FAILED: "#c62828", Status.WAIVED: "#1565c0", Status.NOT_APPLICABLE: "#78909c",
    Status.SKIPPED: "#f9a825", Status.UNREACHABLE: "#6a1b9a", Status.NOT_ASSESSED: "#cfd8dc",
}
CHARTED = (Status.PASSED, Status.FAILED, Status.WAIVED, Status.NOT_APPLICABLE, Status.SKIPPED, Status.UNREACHABLE)

CSS = """
:root { --ink: #1d2733; --muted: #5f6b7a; --line: #d9dee5; --bg: #f5f7fa; --card: #fff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); background: var(--bg); }
header { background: #12324a; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; letter-spacing: .2px; }
header p { margin: 0; color: #c9d7e3; font-size: 13px; }
header code { color: #fff; }
main { padding: 20px 32px 48px; max-width: 1400px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 8px; }
.verdict { padding: 12px 16px; border-radius: 6px; font-size: 16px; font-weight: 600; margin-bottom: 16px; }
.verdict.pass { background: #e8f5e9; color: #1b5e20; border: 1px solid #a5d6a7; }
.verdict.fail { background: #ffebee; color: #b71c1c; border: 1px solid #ef9a9a; }
.verdict small { display: block; font-weight: 400; font-size: 13px; color: var(--ink); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(128px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px;
        border-top: 4px solid var(--accent, #90a4ae); }
.card .num { font-size: 28px; font-weight: 700; line-height: 1.1; }
.card .lbl { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .4px; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
.charts { display: grid; grid-template-columns: 1fr; gap: 16px; }
svg text { font-family: inherit; }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
th { background: #eef2f6; font-size: 12px; text-transform: uppercase; letter-spacing: .3px; color: #37474f; }
tr:nth-child(even) td { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
td.reason { color: #37474f; font-size: 12.5px; max-width: 520px; overflow-wrap: anywhere; }
tr.dim td { color: #90a4ae; }
.st { display: inline-block; min-width: 74px; text-align: center; padding: 1px 8px; border-radius: 10px;
      font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.st-passed { background: #2e7d32; } .st-failed { background: #c62828; } .st-not_applicable { background: #78909c; }
.st-skipped { background: #f9a825; color: #3e2723; } .st-unreachable { background: #6a1b9a; }
.st-not_assessed { background: #eceff1; color: #607d8b; } .st-waived { background: #1565c0; }
.tag { display: inline-block; padding: 0 6px; margin: 1px 2px 1px 0; border-radius: 3px; background: #e3eaf1;
       font-size: 11.5px; white-space: nowrap; }
.mand { color: #b71c1c; font-weight: 600; font-size: 11px; }
details { background: var(--card); border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; }
details > summary { cursor: pointer; padding: 8px 12px; font-weight: 600; }
details > div { padding: 0 12px 12px; }
.muted { color: var(--muted); font-weight: 400; font-size: 12.5px; }
a { color: #1565c0; text-decoration: none; } a:hover { text-decoration: underline; }
@media print { details { break-inside: avoid; } header { background: #fff; color: #000; } }
"""


def _e(value) -> str:
    return escape(str(value), quote=True)


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _when(stamp: str) -> str:
    """'2026-11-24T08:00:00+00:00' -> '2026-11-24 08:00:00 UTC' (other zones are shown as given)."""
    for suffix in ("+00:00", "Z"):
        if stamp.endswith(suffix):
            return stamp.removesuffix(suffix).replace("T", " ") + " UTC"
    return stamp


def _badge(status: str) -> str:
    return f'<span class="st st-{_e(status)}">{_e(LABELS.get(status, status))}</span>'


def _tags(values) -> str:
    return "".join(f'<span class="tag">{_e(v)}</span>' for v in values) or '<span class="muted">-</span>'


def bar_chart(chart_id: str, title: str, rows: list[tuple[str, str, dict]]) -> str:
    """A horizontal stacked bar per row (label, tooltip, counts), scaled to the largest row."""
    label_w, bar_w, row_h, top = 300, 560, 24, 46
    width = label_w + bar_w + 90
    height = top + row_h * max(len(rows), 1) + 10
    biggest = max([sum(c.get(s, 0) for s in CHARTED) for _, _, c in rows] + [1])
    parts = [f'<svg id="{_e(chart_id)}" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
             f'width="100%" style="max-width:{width}px" preserveAspectRatio="xMinYMin meet">',
             f'<title>{_e(title)}</title>',
             f'<text x="0" y="16" font-size="14" font-weight="600" fill="#1d2733">{_e(title)}</text>']
    x = label_w
    for status in CHARTED:
        parts.append(f'<rect x="{x}" y="26" width="12" height="12" fill="{COLOURS[status]}"/>'
                     f'<text x="{x + 16}" y="36" font-size="12" fill="#37474f">{_e(LABELS[status])}</text>')
        x += 16 + 8 * len(LABELS[status]) + 18
    for index, (label, tooltip, counts) in enumerate(rows):
        y = top + index * row_h
        short = label if len(label) <= 44 else label[:42] + "…"
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" font-size="12" text-anchor="end" fill="#1d2733">'
                     f'<title>{_e(tooltip)}</title>{_e(short)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="{row_h - 8}" fill="#f0f3f6"/>')
        x = float(label_w)
        total = 0
        for status in CHARTED:
            number = counts.get(status, 0)
            if not number:
                continue
            total += number
            w = bar_w * number / biggest
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                         f'fill="{COLOURS[status]}"><title>{_e(label)}: {number} {_e(LABELS[status])}</title></rect>')
            if w >= 22:
                ink = "#3e2723" if status == Status.SKIPPED else "#fff"
                parts.append(f'<text x="{x + w / 2:.1f}" y="{y + 15}" font-size="11" text-anchor="middle" '
                             f'fill="{ink}">{number}</text>')
            x += w
        failed = counts.get("failed", 0)
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}" font-size="11" fill="#5f6b7a">{total}'
                     f'{f" ({failed} failed)" if failed else ""}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _summary(data: dict) -> str:
    s = data["summary"]
    cells = s["cells"]
    cards = [
        ("sum-hosts", "hosts", s["hosts"], "#12324a"),
        ("sum-reachable", "reachable", s["reachable"], "#1565c0"),
        ("sum-passed", "passed", cells["passed"], COLOURS[Status.PASSED]),
        ("sum-failed", "failed", cells["failed"], COLOURS[Status.FAILED]),
        ("sum-waived", "waived", cells["waived"], COLOURS[Status.WAIVED]),
        ("sum-not-applicable", "not applicable", cells["not_applicable"], COLOURS[Status.NOT_APPLICABLE]),
        ("sum-skipped", "skipped", cells["skipped"], COLOURS[Status.SKIPPED]),
        ("sum-unreachable", "unreachable hosts", s["unreachable"], COLOURS[Status.UNREACHABLE]),
        ("sum-mandatory-failures", "mandatory controls failed", s["mandatory_failures"], "#b71c1c"),
    ]
    html = ['<section class="cards" id="summary">']
    for ident, label, number, accent in cards:
        html.append(f'<div class="card" style="--accent:{accent}"><div class="num" id="{ident}">{number}</div>'
                    f'<div class="lbl">{_e(label)}</div></div>')
    html.append("</section>")
    checks = s["checks"]
    html.append(f'<p class="muted">Results count one control on one host. {s["controls_assessed"]} of '
                f'{len(data["controls"])} catalog controls were assessed; the checks behind them: '
                f'{checks["passed"]} passed, {checks["failed"]} failed, {checks["error"]} errors, '
                f'{checks["not_applicable"]} not applicable, {checks["skipped"]} skipped.</p>')
    return "".join(html)


def _verdict(data: dict) -> str:
    s = data["summary"]
    waived = s["cells"].get(Status.WAIVED, 0)
    if s["verdict"] == "pass":
        note = (f'<small>{_plural(waived, "control result")} waived by the city: see '
                '<a href="#waivers">Waivers</a>.</small>') if waived else ""
        return ('<div class="verdict pass" id="verdict">PASS: no mandatory control failed and every host was '
                f"reached.{note}</div>")
    reasons = []
    if s["mandatory_failures"]:
        reasons.append(f'{s["mandatory_failures"]} mandatory control(s) failed')
    if s["unreachable"]:
        reasons.append(f'{s["unreachable"]} host(s) unreachable')
    return f'<div class="verdict fail" id="verdict">FAIL: {_e("; ".join(reasons))}</div>'


def _mandatory(data: dict) -> str:
    rows = data["mandatory_failures"]
    if not rows:
        return '<p class="muted">No mandatory control failed.</p>'
    body = []
    for row in rows:
        hosts = ", ".join(f'<a href="#host-{_e(h)}">{_e(h)}</a>' for h in row["hosts"])
        body.append(f'<tr><td class="id"><a href="#{_e(row["control"])}">{_e(row["control"])}</a></td>'
                    f'<td>{_e(row["title"])}</td><td>{hosts}</td></tr>')
    body = "".join(body)
    return (f'<table id="mandatory-failures"><thead><tr><th>Control</th><th>Title</th><th>Failed on</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _zones(data: dict) -> str:
    html = []
    for zone, body in data["zones"].items():
        hosts = _plural(len(body["hosts"]), "host")
        html.append(f'<h3 id="zone-{_e(zone)}">Zone {_e(zone)} <span class="muted">{hosts}</span></h3>')
        html.append('<table class="zone"><thead><tr><th>Host</th><th>Status</th>'
                    + "".join(f'<th class="num">{_e(LABELS[s])}</th>' for s in STATUSES) + "</tr></thead><tbody>")
        for name in body["hosts"]:
            host = data["hosts"][name]
            html.append(f'<tr><td><a href="#host-{_e(name)}">{_e(name)}</a></td><td>{_badge(host["status"])}</td>'
                        + "".join(f'<td class="num">{host["counts"][s]}</td>' for s in STATUSES) + "</tr>")
        html.append("</tbody></table>")
    return "".join(html)


def _exceptions(data: dict) -> str:
    lines = data.get("policy_exceptions") or []
    if not lines:
        return '<p class="muted">None: every rule of the zones policy holds.</p>'
    return "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>"


def _waivers(data: dict) -> str:
    waivers = data.get("waivers") or []
    if not waivers:
        return '<p class="muted">None: the city waives no control.</p>'
    rows = []
    for waiver in waivers:
        hosts = ", ".join(f'<a href="#host-{_e(h)}">{_e(h)}</a>' for h in waiver["audited_hosts"])
        others = len(waiver["hosts"]) - len(waiver["audited_hosts"])
        if others:
            hosts += (f' <span class="muted">(+{_plural(others, "host")} not audited: out of this run or '
                      "unreachable)</span>")
        state = (f'{_badge(Status.FAILED)} expired on {_e(waiver["expires"])}' if waiver["expired"]
                 else f"{_badge(Status.WAIVED)} in force")
        rows.append(f'<tr><td class="id"><a href="#{_e(waiver["control"])}">{_e(waiver["control"])}</a></td>'
                    f'<td>{hosts or "-"}</td><td class="reason">{_e(waiver["reason"])}</td>'
                    f'<td>{_e(waiver["approver"])}</td><td class="id">{_e(waiver["expires"])}</td>'
                    f'<td>{_e(waiver.get("ticket") or "-")}</td><td>{state}</td></tr>')
    return ('<table id="waiver-table"><thead><tr><th>Control</th><th>Hosts</th><th>Reason</th><th>Approver</th>'
            "<th>Expires</th><th>Ticket</th><th>State</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


_DISPOSITION = {"mapped": "mapped to", "waived": "waived", "unmapped": "unmapped"}


def _summary_text(scanner: dict) -> str:
    summary = scanner.get("summary") or {}
    if scanner["name"] == "lynis" and "hardening_index" in summary:
        return (f"hardening index {summary['hardening_index']}, {summary['tests_done']} tests, "
                f"{summary['warnings']} warnings, {summary['suggestions']} suggestions")
    if "fail" in summary:
        return f"{summary['fail']} fail, {summary['warn']} warn ({summary.get('software', '')})"
    return ""


def _finding_row(finding: dict) -> str:
    disposition = finding["disposition"]
    where = (f'<a href="#{_e(finding["control"])}">{_e(finding["control"])}</a>' if finding.get("control")
             else "-")
    bad = disposition == "unmapped" and finding["severity"] == "warning"
    label = _DISPOSITION.get(disposition, disposition)
    badge = _badge(Status.FAILED) if bad else f'<span class="tag">{_e(label)}</span>'
    detail = f" ({finding['detail']})" if finding.get("detail") else ""
    return (f'<tr><td class="id">{_e(finding["id"])}</td><td>{_e(finding["severity"])}</td>'
            f'<td class="reason">{_e(finding["text"] + detail)}</td><td>{badge}</td><td class="id">{where}</td>'
            f'<td class="reason">{_e(finding.get("reason") or "")}</td></tr>')


def _scanners(data: dict) -> str:
    """Per host: each scanner's status, version and summary, and every finding beside its control."""
    listed = data.get("scanners") or {}
    if not listed:
        return '<p class="muted">No scanner evidence in this run.</p>'
    html = []
    for host, scanners in listed.items():
        html.append(f'<h3 id="scanners-{_e(host)}">{_e(host)}</h3><table class="scanners"><thead><tr><th>Scanner</th>'
                    "<th>Version</th><th>Status</th><th>Summary</th><th>Raw output</th></tr></thead><tbody>")
        for scanner in scanners:
            ran = scanner["status"] == "ran"
            state = (_badge(Status.PASSED).replace(">passed<", ">ran<") if ran else
                     f'{_badge(Status.FAILED if scanner["status"] != "not_run" else Status.NOT_ASSESSED)} '
                     f'{_e(scanner["status"].replace("_", " "))}: {_e(scanner.get("error") or "")}')
            html.append(f'<tr><td>{_e(scanner["name"])}</td><td>{_e(scanner.get("version") or "-")}</td>'
                        f'<td>{state}</td><td>{_e(_summary_text(scanner))}</td>'
                        f'<td class="reason">{_e(", ".join(scanner.get("raw") or []) or "-")}</td></tr>')
        html.append("</tbody></table>")
        findings = [(scanner["name"], f) for scanner in scanners for f in scanner.get("findings", [])]
        if findings:
            html.append('<table class="findings"><thead><tr><th>Finding</th><th>Severity</th><th>Text</th>'
                        "<th>Disposition</th><th>Control</th><th>Reason</th></tr></thead><tbody>"
                        + "".join(_finding_row({**f, "id": f"{name} {f['id']}"}) for name, f in findings)
                        + "</tbody></table>")
        fixed = [f"{scanner['name']} {item['key']} ({item['control']})" for scanner in scanners
                 for item in scanner.get("fixed", [])]
        if fixed:
            html.append(f'<p class="muted">Fixed (tested by the scanner, nothing found): {_e("; ".join(fixed))}</p>')
    return "".join(html)


def _control_reason(body: dict) -> str:
    """Why a control has its overall status: the first failure, else the first waiver, else the
    n/a or skip reason."""
    cells = body["hosts"]
    failed = [(host, cell) for host, cell in cells.items() if cell["status"] == Status.FAILED]
    unreachable = sum(cell["status"] == Status.UNREACHABLE for cell in cells.values())
    if failed:
        host, cell = failed[0]
        more = f" (and {_plural(len(failed) - 1, 'more host')})" if len(failed) > 1 else ""
        return f"{host}: {cell['reason']}{more}"
    waived = [(host, cell) for host, cell in cells.items() if cell["status"] == Status.WAIVED]
    if waived:
        host, cell = waived[0]
        more = f" (and {_plural(len(waived) - 1, 'more host')})" if len(waived) > 1 else ""
        return f"{host}: {cell['reason']}{more}"
    if body["status"] == Status.PASSED:
        return f"not checked on {_plural(unreachable, 'unreachable host')}" if unreachable else ""
    for status in (Status.SKIPPED, Status.NOT_APPLICABLE, Status.UNREACHABLE):
        reason = next((c["reason"] for c in cells.values() if c["status"] == status and c["reason"]), "")
        if reason:
            return reason
    return ""


def _controls(data: dict) -> str:
    rows = []
    for cid, body in data["controls"].items():
        counts = body["counts"]
        dim = ' class="dim"' if body["status"] == Status.NOT_ASSESSED else ""
        mandatory = ' <span class="mand">mandatory</span>' if body["mandatory"] else ""
        rows.append(
            f'<tr id="{_e(cid)}"{dim}><td class="id">{_e(cid)}</td><td>{_e(body["title"])}{mandatory}</td>'
            f'<td>{_tags(body["iec62443"])}</td><td>{_tags(body["cisa_cpg"])}</td><td>{_badge(body["status"])}</td>'
            f'<td class="num">{counts["passed"]}</td><td class="num">{counts["failed"]}</td>'
            f'<td class="num">{counts["waived"]}</td>'
            f'<td class="num">{counts["not_applicable"] + counts["skipped"]}</td>'
            f'<td class="reason">{_e(_control_reason(body))}</td></tr>')
    return ('<table id="controls"><thead><tr><th>ID</th><th>Control</th><th>IEC 62443-3-3</th><th>CISA CPG</th>'
            '<th>Status</th><th class="num">hosts passed</th><th class="num">hosts failed</th>'
            '<th class="num">hosts waived</th>'
            '<th class="num">hosts n/a or skipped</th><th>Reason</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _checklists(data: dict) -> str:
    html = []
    for source in data["sources"]:
        html.append(f'<h3 id="source-{_e(source["id"])}">{_e(source["title"])}</h3>')
        html.append('<table class="checklist"><thead><tr><th>Item</th><th>Recommendation</th><th>Controls</th>'
                    '<th>Status</th><th class="num">passed</th><th class="num">failed</th></tr></thead><tbody>')
        for item in source["items"]:
            links = " ".join(f'<a href="#{_e(c)}">{_e(c)}</a>' for c in item["controls"])
            counts = item["counts"]
            html.append(f'<tr id="item-{_e(item["id"])}"><td class="id">{_e(item["id"])}</td>'
                        f'<td>{_e(item["title"])}</td><td class="reason">{links}</td><td>{_badge(item["status"])}</td>'
                        f'<td class="num">{counts["passed"]}</td><td class="num">{counts["failed"]}</td></tr>')
        html.append("</tbody></table>")
    return "".join(html)


def _device(metadata: dict) -> str:
    keys = ("vendor", "model", "firmware", "role", "criticality", "owner", "support_end_of_life")
    shown = [f"{k.replace('_', ' ')}: {metadata[k]}" for k in keys if metadata.get(k) not in (None, "")]
    return " · ".join(shown)


def _hosts(run: AuditRun, data: dict) -> str:
    html = []
    for host in run.hosts:
        summary = data["hosts"][host.name]
        counts = summary["counts"]
        opened = " open" if summary["status"] in (Status.FAILED, Status.UNREACHABLE) else ""
        html.append(f'<details id="host-{_e(host.name)}"{opened}><summary>{_e(host.name)} '
                    f'{_badge(summary["status"])} <span class="muted">zone {_e(host.zone or NO_ZONE)} · '
                    f'{_e(host.architecture) + " · " if host.architecture else ""}'
                    f'{counts["passed"]} passed, {counts["failed"]} failed, {counts["waived"]} waived, '
                    f'{counts["not_applicable"]} n/a, '
                    f'{counts["skipped"]} skipped</span></summary><div>')
        device = _device(host.metadata or {})
        if device:
            html.append(f'<p class="muted">{_e(device)}</p>')
        if host.error:
            html.append(f'<p class="reason"><strong>{"Unreachable" if not host.reachable else "Note"}:</strong> '
                        f"{_e(host.error)}</p>")
        rows, skipped = [], []
        for cid, body in data["controls"].items():
            cell = body["hosts"][host.name]
            if cell["status"] == Status.NOT_ASSESSED:
                skipped.append(cid)
                continue
            found = "; ".join(f"{f['scanner']} {f['id']}" for f in cell.get("scanner_findings") or [])
            seen = f'<br><span class="muted">scanners found: {_e(found)}</span>' if found else ""
            rows.append(f'<tr><td class="id"><a href="#{_e(cid)}">{_e(cid)}</a></td><td>{_e(body["title"])}</td>'
                        f'<td>{_tags(body["iec62443"])}</td><td>{_tags(body["cisa_cpg"])}</td>'
                        f'<td>{_badge(cell["status"])}</td><td class="reason">{_e(cell["reason"])}{seen}</td></tr>')
        if rows:
            html.append('<table class="host"><thead><tr><th>ID</th><th>Control</th><th>IEC 62443-3-3</th>'
                        "<th>CISA CPG</th><th>Status</th><th>Reason</th></tr></thead><tbody>"
                        + "".join(rows) + "</tbody></table>")
        if skipped and host.reachable:
            html.append(f'<p class="muted">Not assessed on this host (no check ran): {_e(", ".join(skipped))}</p>')
        html.append("</div></details>")
    return "".join(html)


def render(result: AuditResult) -> str:
    """The page, as text."""
    run, data = result.run, result.facts
    zone_rows = [(f"{zone} ({_plural(len(body['hosts']), 'host')})", zone, body["counts"])
                 for zone, body in data["zones"].items()]
    item_rows = [(f"{item['id']} {item['title']}", f"{item['id']} {item['title']}", item["counts"])
                 for source in data["sources"] for item in source["items"]]
    title = f"cityward audit: {run.inventory}"
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f'<header><h1>cityward audit</h1><p>Inventory <code>{_e(run.inventory)}</code> · '
        f"started {_e(_when(run.started))} · finished {_e(_when(run.finished))} · "
        f"cityward {_e(run.cityward_version)}</p></header><main>",
        _verdict(data),
        _summary(data),
        '<h2 id="mandatory">Mandatory controls that failed</h2>', _mandatory(data),
        '<h2 id="charts">Results by zone and by checklist item</h2>',
        '<div class="charts"><div class="panel">',
        bar_chart("chart-zones", "Results by zone (one result = one control on one host)", zone_rows),
        '</div><div class="panel">',
        bar_chart("chart-sources", "Results by checklist item (results of the controls mapped to it)", item_rows),
        "</div></div>",
        '<h2 id="checklists">Checklists</h2>', _checklists(data),
        '<h2 id="zones">Zones</h2>', _zones(data),
        '<h2 id="policy-exceptions">Exceptions the zones policy keeps</h2>', _exceptions(data),
        '<h2 id="waivers">Waivers</h2>', _waivers(data),
        '<h2 id="control-table">Controls</h2>', _controls(data),
        '<h2 id="scanners">Independent scanners (CW-GOV-07)</h2>', _scanners(data),
        '<h2 id="hosts">Hosts</h2>', _hosts(run, data),
        "</main></body></html>\n",
    ])

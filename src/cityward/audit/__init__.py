"""`cityward audit`: run the control checks on live hosts and report the evidence, as a pipeline.

    collect    cityward.audit.collect: per host, the evidence (EVIDENCE: the SBOM of CW-GOV-06)
               and the control checks (cityward.checks, one pytest process per host, whose outcomes
               the plugin cityward.audit.pytest_plugin records) -> AuditRun (cityward.audit.model).
               The environment of the check processes is the caller's to give.
    aggregate  cityward.audit.aggregate: pure, once per run: the status of every control on every
               host, rolled up per control, host, zone and checklist item -> AuditResult.
    render     render_html, render_json, render_junit, render_sarif (the report files) and
               render_text (the console summary): each `render(result) -> str`.
    write      cityward.audit.write: the requested formats to their files.

cityward.audit_cmd wires the four, after reading the city's waivers (cityward.waivers: bad ones
stop the audit before any host is contacted) into AuditRun.waivers, which aggregate applies. A
check's outcome (model.Outcome) is decided by the check: passed, failed, error, skipped, or
not_applicable when it calls cityward.checks.outcomes.not_applicable. A control's status on a host
(aggregate.Status, "waived" included) is the aggregate's to decide. cityward.audit.sbom builds
the CycloneDX document the SBOM collector writes.
"""

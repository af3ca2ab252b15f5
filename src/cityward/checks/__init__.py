"""The control checks: read-only testinfra modules, one per area, each test marked with the control
IDs it proves. `cityward audit` runs them against live hosts, Molecule verify against the lab's;
they ship in the wheel so that an installed cityward audits without a checkout."""

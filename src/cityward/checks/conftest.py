"""The control checks' fixtures (cityward.checks.fixtures). The same modules run under `molecule
verify` and `cityward audit`: they only read state from the host, never change it."""

from cityward.checks.fixtures import catalog, host, hostvars, in_container, inventory_path, ssh_endpoint

__all__ = ["catalog", "host", "hostvars", "in_container", "inventory_path", "ssh_endpoint"]

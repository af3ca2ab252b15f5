"""A console session on a lab container: `podman exec -it NAME login USER` on a real pty."""

from __future__ import annotations

import os
import pty
import select
import time


class Console:
    def __init__(self, container: str, user: str, secrets: tuple[str, ...] = ()):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child: become the console
            os.execvp("podman", ["podman", "exec", "-it", container, "login", user])  # noqa: S606
        self.output = b""
        self._secrets = secrets

    def transcript(self, last: int = 600) -> str:
        """The tail of the screen, with every secret blanked, for assertion messages."""
        text = self.output.decode(errors="replace")
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text[-last:]

    def expect(self, token: bytes, timeout: float = 20) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return False
            self.output += data
            if token in self.output:
                return True
        return False

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode() + b"\n")

    def close(self) -> None:
        try:
            self.send("exit")
            time.sleep(0.5)
        except OSError:
            pass
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)

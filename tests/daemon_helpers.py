"""`dagster-daemon run -w workspace.yaml` as a child process of a test.

The daemon starts in a session of its own, so a kill reaches it together with the code server it
spawns for the workspace (and any run worker that code server would start), as systemd's
control-group kill does; its output goes to a file the test reads (and searches for secrets)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from finance_pipeline.settings import PROJECT_ROOT

DAEMON = Path(sys.executable).parent / "dagster-daemon"
WORKSPACE = PROJECT_ROOT / "workspace.yaml"

T = TypeVar("T")


class DaemonProcess:
    def __init__(self, env: Mapping[str, str], log: Path, workspace: Path = WORKSPACE) -> None:
        self.env = {**os.environ, **env}
        # the project under test first, as for the tests themselves (a worktree beside an installed copy)
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
        self.log = Path(log)
        self.workspace = Path(workspace)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        # kept out of failure messages (the test itself checks that the log never holds them)
        self._secrets = [v for k, v in env.items() if k.endswith("PASSWORD") and v]

    def start(self) -> "DaemonProcess":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([str(DAEMON), "run", "-w", str(self.workspace)], cwd=self.workspace.parent,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.started_at = time.time()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass  # the whole group is gone already

    def kill(self) -> None:
        """SIGKILL to the daemon and everything in its session: no shutdown code runs anywhere."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM, then SIGKILL for whatever is left of the session (always safe to call)."""
        if self.proc is None:
            return
        if self.alive:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        text = self.output()[-chars:]
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout_s: float, every_s: float = 0.5) -> T:
        """Poll `probe` until it returns something truthy; fail early (with the log's tail) if the
        daemon died, or after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = probe()
            if found:
                return found
            if not self.alive:
                raise AssertionError(f"the daemon exited ({self.proc.returncode}) while waiting for {what}:\n"
                                     f"{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout_s:.0f}s; daemon log tail:\n{self.tail()}")
            time.sleep(every_s)

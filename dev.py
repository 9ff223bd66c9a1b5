#!/usr/bin/env python3
"""One entry point for a fresh machine: only Python 3.11+ is needed.

    python3 dev.py demo   # set up .venv, then run the main job on the embedded sandbox
    python3 dev.py test   # set up .venv, then run the whole test suite
    python3 dev.py bench  # set up .venv, then run the benchmarks (`--quick` for a short run)

Set-up is incremental: the virtual environment is (re)built only when pyproject.toml or
constraints.txt changed since the last install.  Extra arguments are passed through
(`python3 dev.py test -k shopify`, `python3 dev.py demo --size 5000`).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("FINANCE_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".finance-pipeline-installed"


def _fingerprint() -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def ensure_environment() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is required (this is {sys.version.split()[0]}).")
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == fingerprint and PY.exists():
        return
    if not PY.exists():
        print(f"[dev] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    print("[dev] installing pinned dependencies (a few minutes on a fresh machine)", flush=True)
    subprocess.run(
        [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", str(ROOT / "constraints.txt"), "-e", f"{ROOT}[dev]"],
        check=True,
    )
    STAMP.write_text(fingerprint)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "setup", "bench"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment()
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if command == "setup":
        return 0
    if command == "demo":
        cmd = [str(BIN / "finance-pipeline"), "run", *rest]
    elif command == "bench":
        cmd = [str(PY), "-m", "bench", *rest]
    else:
        # two workers, one test file each at a time: most tests wait on (compressed) rate limits
        # and subprocesses, so two share two cores well; -n on the command line overrides
        parallel = [] if any(a == "-n" or a.startswith("-n") for a in rest) else ["-n", "2", "--dist", "loadfile"]
        cmd = [str(PY), "-m", "pytest", *parallel, *rest]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Webhook receiver benchmark: verified deliveries per second on loopback, and kill -9 durability.

    .venv/bin/python bench/webhooks.py [--deliveries 20000] [--concurrency 64]

`run(settings) -> dict` (for the bench harness):
1. starts `finance-pipeline webhooks serve` as a subprocess on a free port (its own data dir);
2. throughput: sends N correctly signed deliveries, spread over every platform with webhooks
   (each platform's own signature scheme, built by its `webhook_sample`), over `concurrency`
   keep-alive connections, and counts the 200s per second of wall time; then checks that every
   acknowledged event is in the inbox exactly once (zero lost, zero doubled);
3. kill -9: a fresh receiver takes deliveries until it is killed with SIGKILL mid-stream; a new
   receiver is started on the same inbox and every event that had been answered 200 must be there.

The client is a minimal HTTP/1.1 writer on asyncio streams, so the numbers measure the receiver,
not an HTTP library.  Both processes share the machine's cores.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from finance_pipeline.settings import Settings  # noqa: E402


def start_receiver(data_dir: Path, env_extra: dict | None = None) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "FINANCE_DATA_DIR": str(data_dir), **(env_extra or {})}
    proc = subprocess.Popen([sys.executable, "-m", "finance_pipeline.cli", "webhooks", "serve", "--port", "0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"receiver did not start: {proc.stderr.read()}")
    return proc, json.loads(line)["url"]


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def deliveries(settings: Settings, n: int, offset: int = 0) -> list[tuple[str, str, dict, bytes]]:
    """(platform, event key, headers, body) for n signed deliveries, round-robin over platforms."""
    from finance_pipeline.webhooks import endpoints

    eps = [ep for ep in endpoints.load(settings).values() if ep.sample and ep.secret]
    out = []
    for i in range(offset, offset + n):
        ep = eps[i % len(eps)]
        headers, body = ep.sample(ep.secret.value, i)
        out.append((ep.name, str(i), headers, body))
    return out


def _request(host: str, path: str, headers: dict, body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _send_all(url: str, items: list, concurrency: int, acked: list, stop_after_s: float | None = None) -> int:
    """Send items over `concurrency` keep-alive connections; append (platform, key) per 200."""
    u = urlparse(url)
    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    failures = 0
    deadline = time.monotonic() + stop_after_s if stop_after_s else None

    async def worker() -> None:
        nonlocal failures
        try:
            reader, writer = await asyncio.open_connection(u.hostname, u.port)
        except OSError:
            return
        try:
            while not queue.empty():
                if deadline and time.monotonic() > deadline:
                    return
                platform, key, headers, body = queue.get_nowait()
                writer.write(_request(u.netloc, f"/webhooks/{platform}", headers, body))
                await writer.drain()
                status_line = await reader.readline()
                if not status_line:
                    return
                status = int(status_line.split()[1])
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                if status == 200:
                    acked.append((platform, key))
                else:
                    failures += 1
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            return
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


def _event_ids(settings: Settings, items: list) -> dict[tuple[str, str], tuple[str, str]]:
    """(platform, key) -> (platform, inbox event id), using the platform's own event splitter."""
    from finance_pipeline.webhooks import endpoints

    eps = endpoints.load(settings)
    out = {}
    for platform, key, headers, body in items:
        lowered = {k.lower(): v for k, v in headers.items()}
        (event_id, _, _), = eps[platform].events(lowered, body)
        out[(platform, key)] = (platform, event_id)
    return out


def _inbox_ids(data_dir: Path) -> tuple[set, int]:
    from finance_pipeline.webhooks.inbox import Inbox, inbox_path

    with Inbox(inbox_path(data_dir)) as inbox:
        return inbox.ids(), inbox.count()


def run(settings: Settings, deliveries_n: int = 20_000, concurrency: int = 64, kill_after_s: float = 2.0) -> dict:
    results: dict = {"deliveries": deliveries_n, "concurrency": concurrency}
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        data_dir = Path(tmp)
        # the sandbox (its seed decides the signing secrets) is copied from settings' if present
        if settings.sandbox_dir.exists():
            import shutil

            (data_dir / "sandbox").mkdir()
            shutil.copy(settings.sandbox_dir / "state.json", data_dir / "sandbox" / "state.json")
        local = dataclasses.replace(settings, data_dir=data_dir)
        env = {"FINANCE_SANDBOX_SEED": str(settings.sandbox_seed), "FINANCE_SANDBOX_SIZE": str(settings.sandbox_size)}

        # -- throughput ----------------------------------------------------------------------
        items = deliveries(local, deliveries_n)
        expected = _event_ids(local, items)
        proc, url = start_receiver(data_dir, env)
        try:
            acked: list = []
            t0 = time.perf_counter()
            failures = asyncio.run(_send_all(url, items, concurrency, acked))
            elapsed = time.perf_counter() - t0
        finally:
            _stop(proc)
        stored, rows = _inbox_ids(data_dir)
        acked_ids = {expected[a] for a in acked}
        results.update({
            "acknowledged": len(acked), "refused": failures, "seconds": round(elapsed, 3),
            "deliveries_per_s": round(len(acked) / elapsed, 1),
            "lost": len(acked_ids - stored), "inbox_rows": rows, "doubled": rows - len(stored),
        })

        # -- kill -9 mid-stream ------------------------------------------------------------------
        more = deliveries(local, deliveries_n * 5, offset=deliveries_n)
        expected = _event_ids(local, more)
        proc, url = start_receiver(data_dir, env)
        acked = []

        async def send_and_kill() -> None:
            async def killer() -> None:
                await asyncio.sleep(kill_after_s)
                os.kill(proc.pid, signal.SIGKILL)
            await asyncio.gather(_send_all(url, more, concurrency, acked), killer())

        asyncio.run(send_and_kill())
        proc.wait(timeout=30)
        proc2, url2 = start_receiver(data_dir, env)  # restart on the same inbox (recovers the WAL)
        try:
            stored, rows = _inbox_ids(data_dir)
        finally:
            _stop(proc2)
        acked_ids = {expected[a] for a in acked}
        results["kill9"] = {"killed_after_s": kill_after_s, "acknowledged_before_kill": len(acked),
                            "missing_after_restart": len(acked_ids - stored),
                            "stored_not_acknowledged": len(stored & set(expected.values()) - acked_ids)}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--kill-after", type=float, default=2.0)
    args = parser.parse_args()
    print(json.dumps(run(Settings.from_env(), args.deliveries, args.concurrency, args.kill_after), indent=2))

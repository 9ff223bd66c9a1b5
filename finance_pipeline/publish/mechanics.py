"""Publish mechanics every destination shares; a publisher supplies only the platform mapping.

A publisher run, for each object type (contacts before the invoices that reference them):

1. `desired`: the records the destination should hold, each `Desired(key, content_hash, record)`.
2. `resolve_unknown(...)`: keys whose remote state the ledger cannot vouch for — left *pending* by
   a crash, never published, or failed before getting a remote id — are looked up at the
   destination by business reference, in batches, BEFORE anything is posted.  Found and equal →
   recorded done; found but different → its remote id is recorded so the record is *updated*;
   not found → posted as new.  This is what makes a kill -9 between a POST and the ledger write
   harmless, and it also adopts records that exist remotely when the ledger was lost.
3. `ledger.plan(...)` splits the rest into new / changed / unchanged; the publisher maps them to
   `Write`s (create / update / void) with a request body.
4. `write_batches(...)`: for each batch, mark pending (committed), send, then mark each element
   done or failed from the destination's per-element answer.  A definitive rejection of the whole
   request (`Rejected`) fails its elements; an ambiguous failure (timeouts or 5xx after every
   retry) leaves them pending for the next run's step 2, as does an element answered
   `Outcome(unresolved=True)` (no answer for it in a batch reply).  Auth failures (401/403) stop the
   run.  A batch of N costs two ledger transactions whatever N is; a crash inside it leaves at most
   N keys pending.  A destination without a batch API sends one request per record through
   `write_each`: the same protocol with the ledger marked per group of records, not per request.
5. read back and compare (platform-specific), reported as `Mismatch`es in the `PublishResult`.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Generic, Iterable, Iterator, Literal, Mapping, Sequence, TypeVar

from finance_pipeline.http.client import ApiError
from finance_pipeline.http.redaction import redact
from finance_pipeline.publish.ledger import PublishLedger

log = logging.getLogger("finance_pipeline.publish")

T = TypeVar("T")
Op = Literal["create", "update", "void"]


def batched(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def idempotency_key(namespace: str, parts: Iterable[Iterable[str | None]]) -> str:
    """A key derived from what is being written (business keys, content hashes, remote ids), so a
    retry of the same request reuses it and any different request gets another one (≤ 128 chars)."""
    digest = hashlib.sha256(namespace.encode())
    for part in sorted("\x1f".join(p or "" for p in item) for item in parts):
        digest.update(b"\x1e" + part.encode())
    return f"{namespace}-{digest.hexdigest()[:48]}"


@dataclass(frozen=True)
class Desired(Generic[T]):
    key: str  # business key (invoice number, customer id …)
    content_hash: str  # ledger.content_hash of the mapped payload
    record: T  # whatever the platform mapping needs to build the request


@dataclass
class Write:
    op: Op
    key: str
    content_hash: str
    remote_id: str | None
    body: Any


@dataclass
class Outcome:
    ok: bool
    remote_id: str | None = None
    error: str | None = None
    # no definitive answer for this record (transport error, 5xx after retries, no part in a batch
    # answer): it stays pending and is looked up at the destination on the next run
    unresolved: bool = False


class Rejected(Exception):
    """The destination refused the whole request definitively (nothing was written)."""


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    voided: int = 0
    unchanged: int = 0
    skipped: int = 0  # nothing to do remotely (e.g. voided before it was ever published)
    failed: int = 0  # the destination said no; recorded failed, retried next run
    unresolved: int = 0  # no definitive answer; left pending for the next run
    recovered: int = 0  # pending keys resolved by looking them up at the destination
    adopted: int = 0  # records found at the destination that the ledger did not know

    def bump(self, op: Op) -> None:
        if op == "create":
            self.created += 1
        elif op == "update":
            self.updated += 1
        else:
            self.voided += 1

    @property
    def written(self) -> int:
        return self.created + self.updated + self.voided


@dataclass(frozen=True)
class ItemError:
    object_type: str
    key: str
    message: str


@dataclass(frozen=True)
class Mismatch:
    """A read-back difference between the destination and the marts."""

    key: str
    field: str
    expected: Any
    actual: Any


@dataclass
class PublishResult:
    destination: str
    run_id: str
    primary: str  # the object type the convenience counts refer to (e.g. "invoice")
    counts: dict[str, Counts] = field(default_factory=dict)
    errors: list[ItemError] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    read_back: int = 0  # records read back from the destination
    requests: int = 0  # HTTP requests sent (retries included)
    seconds: float = 0.0
    quarantined: int = 0  # records the destination refused, written to ops.quarantine
    dry_run: dict[str, Any] | None = None  # set in dry-run mode: what would have been sent (DryRun.summary)

    def of(self, object_type: str) -> Counts:
        return self.counts.setdefault(object_type, Counts())

    @property
    def ok(self) -> bool:
        return not self.mismatches and all(c.failed == 0 and c.unresolved == 0 for c in self.counts.values())

    @property
    def created(self) -> int:
        return self.of(self.primary).created

    @property
    def updated(self) -> int:
        return self.of(self.primary).updated

    @property
    def voided(self) -> int:
        return self.of(self.primary).voided

    @property
    def unchanged(self) -> int:
        return self.of(self.primary).unchanged

    @property
    def failed(self) -> int:
        return self.of(self.primary).failed + self.of(self.primary).unresolved

    @property
    def writes(self) -> int:
        return sum(c.written for c in self.counts.values())

    def summary(self) -> dict[str, Any]:
        """JSON-able (Dagster metadata, CLI output)."""
        primary = self.of(self.primary)
        flat = {"created": primary.created, "updated": primary.updated, "voided": primary.voided,
                "unchanged": primary.unchanged, "skipped": primary.skipped, "failed": self.failed,
                **{f"{kind}s_written": c.written for kind, c in self.counts.items() if kind != self.primary}}
        return {
            "destination": self.destination, "run_id": self.run_id, "ok": self.ok, **flat,
            "counts": {k: asdict(v) for k, v in self.counts.items()},
            "errors": [asdict(e) for e in self.errors[:50]], "error_count": len(self.errors),
            "mismatches": [{k: str(v) for k, v in asdict(m).items()} for m in self.mismatches[:50]],
            "mismatch_count": len(self.mismatches), "read_back": self.read_back, "requests": self.requests,
            "seconds": round(self.seconds, 3),
            **({"quarantined": self.quarantined} if self.quarantined else {}),
            **({"dry_run": self.dry_run} if self.dry_run is not None else {}),
        }


def resolve_unknown(
    ledger: PublishLedger,
    object_type: str,
    desired: Mapping[str, Desired],
    find: Callable[[list[str]], Mapping[str, Any]],
    *,
    remote_id_of: Callable[[Any], str],
    is_current: Callable[[Any, Desired], bool],
    counts: Counts,
    batch_size: int = 50,
    find_all: Callable[[], Mapping[str, Any]] | None = None,
    scan_above: int = 200,
) -> None:
    """Look up, at the destination, every key whose remote state is unknown, before any write.

    `find(keys)` returns {key: remote record} for the keys that exist remotely.  When more than
    `scan_above` keys are unknown (a first publish, a restored ledger) and `find_all()` is given,
    one paged listing of everything replaces len(keys) / batch_size look-ups.  Lookup errors
    propagate: better to stop than to post a record that may already exist.
    """
    entries = ledger.entries(object_type)
    pending = [k for k, e in entries.items() if e.status == "pending"]
    unknown = [k for k in desired
               if k not in entries or (entries[k].status == "failed" and not entries[k].remote_id)]
    keys = list(dict.fromkeys(pending + unknown))
    if not keys:
        return
    found: dict[str, Any] = {}
    if find_all is not None and len(keys) > scan_above:
        everything = find_all()
        found = {k: everything[k] for k in keys if k in everything}
    else:
        for batch in batched(keys, batch_size):
            found.update(find(batch))
    current, stale, lost = [], [], []
    for key in keys:
        remote, want, entry = found.get(key), desired.get(key), entries.get(key)
        was_pending = entry is not None and entry.status == "pending"
        if remote is None:
            if was_pending:
                lost.append((key, entry.content_hash, "interrupted write did not land (not found at the "
                                                     "destination); it will be posted again", None))
                counts.recovered += 1
            continue
        if want is not None and is_current(remote, want):
            current.append((key, want.content_hash, remote_id_of(remote)))
        else:  # exists with other content: remember its id (hash unknown) so the next step updates it
            stale.append((key, None, remote_id_of(remote)))
        if was_pending:
            counts.recovered += 1
        else:
            counts.adopted += 1
    ledger.mark_done_many(object_type, current, detail="found at the destination, equal to the source",
                          event="found")
    ledger.mark_done_many(object_type, stale, detail="found at the destination with other content",
                          event="found")
    ledger.mark_failed_many(object_type, lost)
    if pending or current or stale:
        log.info("%s %s: looked up %d (%d pending): %d current, %d to update, %d not found",
                 ledger.destination, object_type, len(keys), len(pending), len(current), len(stale),
                 len(keys) - len(current) - len(stale))


def write_batches(
    ledger: PublishLedger,
    object_type: str,
    writes: Sequence[Write],
    send: Callable[[list[Write]], list[Outcome]],
    *,
    counts: Counts,
    errors: list[ItemError],
    batch_size: int = 50,
) -> None:
    """Send `writes` in batches with the pending → done/failed protocol (see module docstring)."""
    for batch in batched(writes, batch_size):
        ledger.mark_pending_many(object_type, [(w.key, w.content_hash, w.remote_id) for w in batch])
        try:
            outcomes = send(batch)
        except Rejected as exc:
            outcomes = [Outcome(False, error=str(exc)) for _ in batch]
        except ApiError as exc:
            if exc.status in (401, 403):
                raise
            _left_pending(ledger, object_type, batch, exc, counts, errors)
            continue
        if len(outcomes) != len(batch):
            raise RuntimeError(f"{ledger.destination}: {len(outcomes)} answers for {len(batch)} {object_type} writes")
        _record(ledger, object_type, list(zip(batch, outcomes)), counts, errors)


def write_each(
    ledger: PublishLedger,
    object_type: str,
    writes: Sequence[Write],
    send: Callable[[Write], Outcome],
    *,
    counts: Counts,
    errors: list[ItemError],
    group_size: int = 250,
    record_every_s: float = 5.0,
) -> None:
    """`write_batches` for a destination with no batch API (one request per record), without one
    ledger transaction per record: the keys of `group_size` writes are marked pending (committed)
    before the first of them is sent, then each is sent on its own, and the answers are recorded at
    least every `record_every_s` seconds and at the end of the group.  The protocol is unchanged —
    nothing is sent before its key is pending; a crash leaves the group's keys pending, and the next
    run looks them up before posting — a larger group only means more look-ups after a crash.  An
    ambiguous failure of one request leaves that key pending and the others go on; a Rejected is a
    refusal of that record; 401/403 stop the run (after recording the answers already received)."""
    for group in batched(writes, group_size):
        ledger.mark_pending_many(object_type, [(w.key, w.content_hash, w.remote_id) for w in group])
        answered: list[tuple[Write, Outcome]] = []
        recorded_at = time.monotonic()
        try:
            for write in group:
                try:
                    answered.append((write, send(write)))
                except Rejected as exc:
                    answered.append((write, Outcome(False, error=str(exc))))
                except ApiError as exc:
                    if exc.status in (401, 403):
                        raise
                    _left_pending(ledger, object_type, [write], exc, counts, errors)
                if time.monotonic() - recorded_at >= record_every_s:
                    _record(ledger, object_type, answered, counts, errors)
                    answered, recorded_at = [], time.monotonic()
        finally:
            _record(ledger, object_type, answered, counts, errors)


def _left_pending(ledger: PublishLedger, object_type: str, writes: Sequence[Write], exc: ApiError, counts: Counts,
                  errors: list[ItemError]) -> None:
    counts.unresolved += len(writes)
    message = redact(f"no definitive answer, left pending for the next run: {exc}")
    errors.extend(ItemError(object_type, w.key, message) for w in writes)
    log.warning("%s %s: %d records left pending: %s", ledger.destination, object_type, len(writes), message)


def _record(ledger: PublishLedger, object_type: str, answered: Sequence[tuple[Write, Outcome]], counts: Counts,
            errors: list[ItemError]) -> None:
    """The destination's answer to each write: done (with its remote id) or failed (with its message)."""
    done, failed = [], []
    for write, outcome in answered:
        if outcome.unresolved:
            counts.unresolved += 1
            message = redact(f"no definitive answer, left pending for the next run: {outcome.error or ''}")
            errors.append(ItemError(object_type, write.key, message))
            continue
        if outcome.ok:
            done.append((write.key, write.content_hash, outcome.remote_id or write.remote_id))
            counts.bump(write.op)
        else:
            message = redact(outcome.error or "rejected")
            failed.append((write.key, write.content_hash, message, write.remote_id))
            errors.append(ItemError(object_type, write.key, message))
            counts.failed += 1
    ledger.mark_done_many(object_type, done)
    ledger.mark_failed_many(object_type, failed)

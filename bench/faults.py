"""Faults: the platform started as `make run` starts it, hurt on purpose; one row per fault.

accepted / delivered / failed / lost / duplicates / recovery seconds, counted from the
database (accepted messages neither sent nor failed by the end of the fault's bound are
lost) and from the sandbox bridges' own record of what they received (a message text the
bridge got twice is a duplicate). Each fault is bounded in time (--fault-settle-seconds).
docs/operations.md "Faults, measured" has the figures and what an operator does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from bench.fault_platform import DONE, FaultPlatform, recipient
from tests.http_receiver import HttpReceiver

COLUMNS = ("accepted", "delivered", "failed", "lost", "duplicates", "recovery_s")


def run(harness, options) -> dict:
    unknown = set(filter(None, options.faults.split(","))) - {f.__name__ for f in FAULTS}
    if unknown:
        raise ValueError(f"unknown fault(s) {sorted(unknown)}; choose from {[f.__name__ for f in FAULTS]}")
    platform = FaultPlatform(Path(harness.tmp) / "faults", database_url=os.environ["DATABASE_URL"])
    rows: list[dict] = []
    try:
        platform.start()
        platform.working_sessions()
        chosen = [f for f in FAULTS if not options.faults or f.__name__ in options.faults.split(",")]
        for fault in chosen:
            print(f"[bench] faults: {fault.__name__} ...", flush=True)
            started = time.monotonic()
            try:
                row = fault(platform, options)
            except Exception as error:  # one fault's failure is a row saying so; the others still run
                import traceback

                row = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
            row = {"fault": fault.__name__, **row, "seconds": round(time.monotonic() - started, 1)}
            rows.append(row)
            print("[bench] faults: " + " ".join(f"{k}={v}" for k, v in row.items() if k != "traceback"), flush=True)
            if fault is not chosen[-1]:
                _healthy_again(platform, options)
    finally:
        platform.close()
    figures = {f"{row['fault']}.{column}": row[column] for row in rows for column in COLUMNS if column in row}
    errors = [f"{row['fault']}: {row['error']}" for row in rows if "error" in row]
    result = {"rows": rows, "columns": list(COLUMNS), "figures": figures}
    if errors:
        result["error"] = "\n".join(errors + [rows[-1].get("traceback", "")])
    return result


def _healthy_again(platform: FaultPlatform, options) -> None:
    """Before the next fault: ready, and every demo tenant's session WORKING (bounded)."""
    deadline = time.monotonic() + options.fault_settle_seconds
    _wait(lambda: _readyz(platform), options.fault_settle_seconds, interval=0.3)
    platform.working_sessions(timeout=max(10.0, deadline - time.monotonic()))


# --- shared pieces ---------------------------------------------------------------------------


def _row(platform: FaultPlatform, tag: str, *, recovery_s: float | None, **extra) -> dict:
    outcome = platform.outcome(tag)
    late = [(m.sent_at - m.accepted_at).total_seconds()
            for m in platform.messages(tag).exclude(sent_at=None).only("sent_at", "accepted_at")]
    return {"accepted": outcome.accepted, "delivered": outcome.delivered, "failed": outcome.failed,
            "lost": outcome.lost, "duplicates": outcome.duplicate_rows + outcome.duplicates_at_bridge,
            "recovery_s": None if recovery_s is None else round(recovery_s, 1),
            "worst_message_s": round(max(late), 1) if late else None,
            "acks_missing": outcome.sent_only, "not_at_bridge": outcome.not_at_bridge,
            "duplicate_rows": outcome.duplicate_rows, "duplicates_at_bridge": outcome.duplicates_at_bridge,
            **extra}


def _send_many(platform, slug: str, tag: str, count: int, *, threads: int = 3, retry_for: float = 30.0,
               to=None) -> list[int]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda n: platform.send(slug, tag, n, retry_for=retry_for,
                                                       to=to(n) if to else "")[0], range(count)))


def _sent_after(platform, tag: str, moment: float) -> float | None:
    """Seconds from `moment` (epoch) to the first message of `tag` sent after it."""
    later = sorted(t for t in platform.sent_times(tag) if t > moment)
    return later[0] - moment if later else None


def _last_sent_after(platform, tag: str, moment: float) -> float | None:
    times = platform.sent_times(tag)
    return max(0.0, max(times) - moment) if times else None


def _wait(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def _session_slot(slug: str) -> tuple[int | None, str]:
    from pooling.models import Assignment, WhatsAppSession

    assignment = Assignment.objects.filter(tenant__slug=slug, ended_at__isnull=True).first()
    status = WhatsAppSession.objects.filter(tenant__slug=slug).values_list("status", flat=True).first() or ""
    return (assignment.slot_id if assignment else None), status


# --- the faults --------------------------------------------------------------------------------


def kill_send_worker(platform: FaultPlatform, options) -> dict:
    """kill -9 the `low` queue's busy worker, spread over the sends; recovery: kill → its message sent."""
    from rq import Queue, Worker
    from rq.job import Job

    tag, slug, sends, kills = "f1", "acme", options.fault_sends, options.fault_worker_kills
    connection = platform.redis()
    queue = Queue("low", connection=connection)
    pool = platform.child("run_worker_pool low")
    sender = threading.Thread(target=_send_many, args=(platform, slug, tag, sends), daemon=True)
    sender.start()
    killed: list[tuple[float, int | None]] = []
    spacing = max(1, sends // (kills + 1))
    deadline = time.monotonic() + options.fault_settle_seconds
    while len(killed) < kills and time.monotonic() < deadline and (sender.is_alive() or not platform.settled(tag)):
        if platform.messages(tag).exclude(sent_at=None).count() < spacing * (len(killed) + 1):
            time.sleep(0.05)
            continue
        ours = {p.pid for p in pool.children(recursive=True)}
        busy = [w for w in Worker.all(queue=queue) if w.pid in ours and w.get_current_job_id()]
        if not busy:
            time.sleep(0.01)
            continue
        worker = busy[0]
        try:
            message_id = Job.fetch(worker.get_current_job_id(), connection=connection).args[0]
        except Exception:  # noqa: BLE001 (the job finished and expired in between: no message in hand)
            message_id = None
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed.append((time.time(), message_id))
    sender.join(timeout=options.fault_settle_seconds)
    # The bound starts again at the last kill: its message waits for a lease and a sweep.
    platform.wait_settled(tag, timeout=options.fault_settle_seconds)
    from messaging.models import Message

    recoveries = []
    for moment, message_id in killed:
        sent = Message.objects.filter(pk=message_id).values_list("sent_at", flat=True).first() if message_id else None
        in_hand = (sent.timestamp() - moment) if sent else None
        progress = _sent_after(platform, tag, moment)
        known = [v for v in (in_hand, progress) if v is not None]
        recoveries.append(max(known) if known else None)  # None: not recovered within the bound
    worst = max(recoveries) if recoveries and None not in recoveries else None
    return _row(platform, tag, recovery_s=worst, kills=len(killed),
                kill_recoveries_s=[None if r is None else round(r, 1) for r in recoveries])


def kill_bridge_worker(platform: FaultPlatform, options) -> dict:
    """kill -9 globex's sandbox bridge while it sends; recovery: kill → WORKING on another slot."""
    from pooling.models import Slot

    tag, slug = "f2", "globex"
    old_slot, _ = _session_slot(slug)
    pid = Slot.objects.get(pk=old_slot).pid
    _send_many(platform, slug, tag, options.fault_burst // 2)
    platform.wait_settled(tag, timeout=options.fault_settle_seconds, acks=0)
    platform.bridge_sends()  # its record, read after its last send and before it dies
    killed_at = time.time()
    psutil.Process(pid).kill()
    stream = threading.Thread(target=_stream, args=(platform, slug, tag, options.fault_burst // 2,
                                                    options.fault_burst // 2), daemon=True)
    stream.start()

    def elsewhere():
        slot, status = _session_slot(slug)
        return slot not in (None, old_slot) and status == "WORKING"

    moved = _wait(elsewhere, options.fault_settle_seconds, interval=0.2)
    working_s = time.time() - killed_at if moved else None
    stream.join(timeout=options.fault_settle_seconds)
    platform.wait_settled(tag, timeout=options.fault_settle_seconds)
    return _row(platform, tag, recovery_s=working_s, health_cycles=None if working_s is None
                else round(working_s / 30, 2))


def _stream(platform, slug, tag, first: int, count: int, interval: float = 0.2) -> None:
    for n in range(first, first + count):
        platform.send(slug, tag, n, retry_for=30)
        time.sleep(interval)


def redis_flushall(platform: FaultPlatform, options) -> dict:
    """FLUSHALL while a burst is being accepted; recovery: flush → the last message sent."""
    tag = "f3"
    return _redis_fault(platform, options, tag, lambda: platform.redis().flushall())


def redis_killed(platform: FaultPlatform, options) -> dict:
    """kill -9 the embedded Redis mid-burst (the launcher restarts it on its AOF)."""
    tag = "f4"
    return _redis_fault(platform, options, tag, lambda: platform.child("redis-server").kill())


def _redis_fault(platform, options, tag: str, hurt) -> dict:
    from rq import Queue

    slug, count = "acme", options.fault_burst
    sender = threading.Thread(target=_send_many, args=(platform, slug, tag, count), daemon=True)
    sender.start()
    _wait(lambda: platform.messages(tag).count() >= count // 2 or not sender.is_alive(), 60, interval=0.02)
    waiting = Queue("low", connection=platform.redis()).count
    hurt_at = time.time()
    hurt()
    ready = _wait(lambda: _readyz(platform), options.fault_settle_seconds, interval=0.2)
    ready_s = time.time() - hurt_at if ready else None
    sender.join(timeout=options.fault_settle_seconds)
    platform.wait_settled(tag, timeout=options.fault_settle_seconds)
    return _row(platform, tag, recovery_s=_last_sent_after(platform, tag, hurt_at), jobs_waiting_at_fault=waiting,
                ready_again_s=None if ready_s is None else round(ready_s, 1))


def _readyz(platform) -> bool:
    try:
        return httpx.get(f"{platform.launcher.base}/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def webhook_receiver_down(platform: FaultPlatform, options) -> dict:
    """initech's webhook endpoint refuses connections while messages go out; then it is back.

    Rows count events: accepted = events for the endpoint, delivered = received 2xx,
    lost = never received, duplicates = received 2xx more than once. Also checked:
    every signature, and order per conversation (the outbox's order)."""
    from http.server import ThreadingHTTPServer

    from messaging.models import WebhookDelivery
    from waplatform.models import OutboxEvent

    tag, slug = "f5", "initech"
    types = ["message.queued", "message.sent", "message.status"]
    receiver = _TimedReceiver(path="/hook")
    try:
        created = platform.clients[slug].post("/webhooks", json={"url": receiver.url, "event_types": types})
        assert created.status_code == 201, created.text
        endpoint_id, secret = created.json()["id"], created.json()["secret"]
        receiver._server.shutdown()  # down: connections refused, as a receiver that is not running
        receiver._server.server_close()
        down_at = time.monotonic()
        _send_many(platform, slug, tag, options.fault_burst, to=lambda n: recipient(tag, n % 2))
        time.sleep(max(0.0, options.fault_webhook_down_seconds - (time.monotonic() - down_at)))
        receiver._server = ThreadingHTTPServer(("127.0.0.1", receiver.port), receiver._handler())
        receiver._server.daemon_threads = True
        threading.Thread(target=receiver._server.serve_forever, daemon=True).start()
        up_at = time.time()
        platform.wait_settled(tag, timeout=options.fault_settle_seconds, until_read=True)

        def all_done():
            open_ = WebhookDelivery.objects.filter(endpoint_id=endpoint_id).exclude(status__in=("succeeded", "dead"))
            return not open_.exists()

        # A head retry may wait out up to about twice the outage (the backoff doubles while it lasts).
        _wait(all_done, options.fault_settle_seconds + 2 * options.fault_webhook_down_seconds, interval=0.5)
        events = {str(e): (pk, key, message) for e, pk, key, message in OutboxEvent.objects.filter(
            tenant_id=platform_tenant_id(slug), type__in=types, envelope__data__text__startswith=f"{tag} ")
            .values_list("event_id", "pk", "ordering_key", "envelope__data__id")}
        received = [r for r in receiver.delivered if r.headers.get("x-wa-event-id") in events]
        ids = [r.headers["x-wa-event-id"] for r in received]
        by_message: dict[str, list[int]] = {}
        by_conversation: dict[str, list[int]] = {}
        seen: set[str] = set()
        for event_id in ids:
            if event_id not in seen:
                seen.add(event_id)
                pk, key, message = events[event_id]
                by_message.setdefault(str(message), []).append(pk)
                by_conversation.setdefault(key, []).append(pk)
        # One message's events (queued, sent, statuses) are causally ordered: none may overtake another.
        # Events of different messages committed at the same time have no order to keep
        # (waplatform.events._held_back); counted apart, as information.
        out_of_order = _inversions(by_message)
        unsigned = sum(1 for r in received if not _signed(r, secret))
        dead = WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status="dead").count()
        last = max((t for t, event_id in receiver.arrivals if event_id in events), default=None)
        return {"accepted": len(events), "delivered": len(seen), "failed": dead, "lost": len(set(events) - seen),
                "duplicates": len(ids) - len(seen),
                "recovery_s": None if last is None else round(max(0.0, last - up_at), 1),
                "unsigned": unsigned, "out_of_order": out_of_order, "conversation_swaps": _inversions(by_conversation),
                "conversations": len(by_conversation),
                "down_s": round(options.fault_webhook_down_seconds, 1),
                "messages": platform.outcome(tag).accepted}
    finally:
        receiver.close()


def _inversions(sequences: dict[str, list[int]]) -> int:
    return sum(1 for pks in sequences.values() for a, b in zip(pks, pks[1:]) if b < a)


def platform_tenant_id(slug: str) -> int:
    from tenants.models import Tenant

    return Tenant.objects.get(slug=slug).pk


def _signed(request, secret: str) -> bool:
    timestamp = request.headers.get("x-wa-timestamp", "")
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers.get("x-wa-signature", ""))


class _TimedReceiver(HttpReceiver):
    """tests/http_receiver.py's receiver, noting when each event arrived."""

    def __init__(self, **options):
        self.arrivals: list[tuple[float, str]] = []
        super().__init__(**options)

    def answer(self, request):
        self.arrivals.append((time.time(), request.headers.get("x-wa-event-id", "")))
        return super().answer(request)


def kill_web_mid_request(platform: FaultPlatform, options) -> dict:
    """kill -9 the daphne serving the API while clients post (each retries with its Idempotency-Key).

    accepted = committed rows; events_lost = their outbox events never handed to every subscriber."""
    from waplatform.models import OutboxEvent

    tag, slug = "f6", "acme"
    counter = iter(range(10**6))
    lock = threading.Lock()
    stop = threading.Event()
    answers: list[tuple[float, int]] = []

    def client():
        while not stop.is_set():
            with lock:
                n = next(counter)
            code, _ = platform.send(slug, tag, n, retry_for=30)
            answers.append((time.time(), code))

    started = time.time()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    recoveries = []
    for _ in range(options.fault_web_kills):
        _wait(lambda: sum(1 for _, c in answers if c == 202) >= 10 + 20 * len(recoveries), 60, interval=0.02)
        killed_at = time.time()
        platform.web_process().kill()
        back = _wait(lambda: any(t > killed_at and c == 202 for t, c in answers), options.fault_settle_seconds,
                     interval=0.1)
        recoveries.append(min(t for t, c in answers if t > killed_at and c == 202) - killed_at if back else None)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    platform.wait_settled(tag, timeout=options.fault_settle_seconds)
    tenant_id = platform_tenant_id(slug)
    events = OutboxEvent.objects.filter(tenant_id=tenant_id, created_at__gte=_aware(started))

    def events_done():
        return not events.filter(delivered_at=None).exists()

    _wait(events_done, options.fault_settle_seconds, interval=0.5)
    known = [r for r in recoveries if r is not None]
    return _row(platform, tag, recovery_s=max(known) if len(known) == len(recoveries) and known else None,
                kills=len(recoveries), events=events.count(), events_lost=events.filter(delivered_at=None).count(),
                answers_not_202=sum(1 for _, c in answers if c != 202))


def _aware(epoch: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def sigterm_under_load_then_start(platform: FaultPlatform, options) -> dict:
    """SIGTERM the launcher while clients post, then start it again (same ports, database, var).

    recovery: start → every message accepted before the stop sent. new_slots: slots made after the
    restart; stale_alerts: alerts open once it has recovered."""
    from operations.models import Alert
    from pooling.models import Slot

    tag, slug = "f7", "acme"
    stop = threading.Event()
    counter = iter(range(10**6))
    lock = threading.Lock()

    def client():
        while not stop.is_set():
            with lock:
                n = next(counter)
            platform.send(slug, tag, n)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    # Stopped with work in hand: accepted messages not sent yet must go out after the start.
    _wait(lambda: platform.messages(tag).count() >= 20 and not platform.settled(tag), 60, interval=0.02)
    unsent_at_stop = platform.messages(tag).exclude(status__in=DONE).count()
    old = platform.launcher
    gone_s, survivors = platform.stop(timeout=60)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    clean = "stopped cleanly" in old.output()
    before_slots = set(Slot.objects.values_list("pk", flat=True))
    restart_at = time.time()
    platform.start(reuse=old)
    ready_s = time.time() - restart_at
    platform.wait_settled(tag, timeout=options.fault_settle_seconds)
    recovery = _last_sent_after(platform, tag, restart_at)
    # Sessions back, then one more health and alert cycle (30 s each) for what no longer applies to resolve.
    try:
        platform.working_sessions(timeout=options.fault_settle_seconds)
    except TimeoutError:
        pass
    time.sleep(min(35.0, options.fault_settle_seconds))
    new_slots = Slot.objects.exclude(pk__in=before_slots).count()
    stale = sorted(Alert.objects.filter(resolved_at=None).values_list("kind", flat=True))
    return _row(platform, tag, recovery_s=recovery, gone_s=None if gone_s is None else round(gone_s, 1),
                survivors=survivors, unsent_at_stop=unsent_at_stop,
                stopped_cleanly=clean, ready_s=round(ready_s, 1), new_slots=new_slots, stale_alerts=stale)


FAULTS = [kill_send_worker, kill_bridge_worker, redis_flushall, redis_killed, webhook_receiver_down,
          kill_web_mid_request, sigterm_under_load_then_start]

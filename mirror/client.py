"""The only module that talks to Firestore.

Every call is bounded (no library retries, FIRESTORE_TIMEOUT_SECONDS each):
a failing Firestore must make a mirror job fail fast so rq's scheduler can
retry it with backoff, rather than sit in the gapic default of 60 s of
retries per call while it holds a maintenance worker.

Only operations the test emulator gets right are used (docs/firestore.md):
set, get/get_all, collection streams without cursors, batches, deletes and
single-writer transactions.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable

from django.conf import settings
from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.transaction import Transaction

from mirror.documents import MirrorDocument
from mirror.enabled import is_enabled  # noqa: F401  (callers ask the client module, as before)

logger = logging.getLogger(__name__)

# google.api_core names RESOURCE_EXHAUSTED "TooManyRequests" (ResourceExhausted is an alias).
TRANSIENT_ERRORS = (
    google_exceptions.ServiceUnavailable,
    google_exceptions.DeadlineExceeded,
    google_exceptions.Aborted,
    google_exceptions.ResourceExhausted,
)
BATCH_LIMIT = 500  # Firestore's cap on writes per commit

_lock = threading.Lock()
_clients: dict[tuple, firestore.Client] = {}


class MirrorNotConfigured(Exception):
    pass


def _timeout() -> float:
    return settings.FIRESTORE_TIMEOUT_SECONDS


def get_client() -> firestore.Client:
    """One client (one gRPC channel) per process and configuration."""
    if not is_enabled():
        raise MirrorNotConfigured("FIRESTORE_PROJECT is not set")
    key = (settings.FIRESTORE_PROJECT, settings.FIRESTORE_DATABASE, settings.FIRESTORE_EMULATOR_HOST)
    with _lock:
        client = _clients.get(key)
        if client is None:
            if settings.FIRESTORE_EMULATOR_HOST:
                # The library reads the emulator address from the environment only.
                os.environ["FIRESTORE_EMULATOR_HOST"] = settings.FIRESTORE_EMULATOR_HOST
            # Credentials the standard Google way (GOOGLE_APPLICATION_CREDENTIALS,
            # workload identity, gcloud ADC); none are needed for the emulator.
            client = firestore.Client(project=settings.FIRESTORE_PROJECT, database=settings.FIRESTORE_DATABASE)
            _clients[key] = client
        return client


def reset_client() -> None:
    """Drop cached channels: after an outage gRPC may sit in its reconnect backoff for a long while."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        try:
            client.close()
        except Exception:  # closing a broken channel must not hide the error being handled
            logger.debug("closing firestore client failed", exc_info=True)


class _BoundedTransaction(Transaction):
    """A transaction whose begin/commit/rollback carry our timeout and no library retry.

    The public Transaction uses the gapic defaults for these three RPCs (up to
    60 s of retries on UNAVAILABLE each); the request shapes are copied from it
    (google-cloud-firestore, pinned in requirements.txt).
    """

    def _rpc_kwargs(self) -> dict:
        return {"metadata": self._client._rpc_metadata, "retry": None, "timeout": _timeout()}

    def _begin(self, retry_id: bytes | None = None) -> None:
        response = self._client._firestore_api.begin_transaction(
            request={"database": self._client._database_string, "options": self._options_protobuf(retry_id)},
            **self._rpc_kwargs(),
        )
        self._id = response.transaction

    def _commit(self) -> list:
        response = self._client._firestore_api.commit(
            request={"database": self._client._database_string, "writes": self._write_pbs, "transaction": self._id},
            **self._rpc_kwargs(),
        )
        self._clean_up()
        self.write_results = list(response.write_results)
        self.commit_time = response.commit_time
        return self.write_results

    def _rollback(self) -> None:
        try:
            self._client._firestore_api.rollback(
                request={"database": self._client._database_string, "transaction": self._id},
                **self._rpc_kwargs(),
            )
        finally:
            self._clean_up()


def write_guarded(documents: list[MirrorDocument], *, force: bool = False) -> int:
    """Write the documents in one transaction, skipping each one whose stored guard is newer.

    Returns how many were written. Reads and writes happen in the same
    transaction, so on Firestore a concurrent writer makes one of the two
    commits fail with ABORTED (transient: the job retries) instead of both
    landing. At most BATCH_LIMIT documents.
    """
    if not documents:
        return 0
    if len(documents) > BATCH_LIMIT:
        raise ValueError(f"at most {BATCH_LIMIT} documents per write, got {len(documents)}")
    client = get_client()
    refs = [client.document(doc.path) for doc in documents]
    transaction = _BoundedTransaction(client, max_attempts=1)
    transaction._begin()
    try:
        stored = {}
        if not force:
            stored = {snap.reference.path: snap.to_dict() for snap in
                      transaction.get_all(refs, retry=None, timeout=_timeout()) if snap.exists}
        written = 0
        for ref, doc in zip(refs, documents):
            current = stored.get(ref.path)
            if current is not None and not _is_newer_or_same(doc, current):
                continue
            transaction.set(ref, doc.data)
            written += 1
        if written:
            transaction._commit()
        else:
            transaction._rollback()
        return written
    except BaseException:
        if transaction.in_progress:
            try:
                transaction._rollback()
            except Exception:  # the original error is the one worth reporting
                logger.debug("firestore rollback failed", exc_info=True)
        raise


def _is_newer_or_same(doc: MirrorDocument, current: dict) -> bool:
    mine, theirs = doc.guard_value(), doc.guard_value(current)
    if any(value is None for value in theirs):
        return True  # a document from before the guard existed, or edited by hand
    try:
        return mine >= theirs
    except TypeError:  # a hand-edited field of the wrong type
        return True


def delete(paths: Iterable[str]) -> int:
    client = get_client()
    paths = list(paths)
    for start in range(0, len(paths), BATCH_LIMIT):
        batch = client.batch()
        for path in paths[start:start + BATCH_LIMIT]:
            batch.delete(client.document(path))
        batch.commit(retry=None, timeout=_timeout())
    return len(paths)


def get_documents(paths: list[str]) -> dict[str, dict | None]:
    """path -> data, None where the document does not exist."""
    client = get_client()
    found: dict[str, dict | None] = dict.fromkeys(paths)
    for start in range(0, len(paths), BATCH_LIMIT):
        refs = [client.document(path) for path in paths[start:start + BATCH_LIMIT]]
        for snap in client.get_all(refs, retry=None, timeout=_timeout()):
            if snap.exists:
                found[snap.reference.path] = snap.to_dict()
    return found


def document_ids(collection_path: str) -> list[str]:
    """Ids of the documents in one collection (a plain stream: no cursors, no collection groups)."""
    client = get_client()
    return [snap.id for snap in client.collection(collection_path).stream(retry=None, timeout=_timeout())]

"""S3Storage: the cache in an S3 bucket (AWS, MinIO, Ceph, R2 …) as immutable batch objects.

Layout under ``s3://bucket/prefix/``: ``objects/<time>-<writer>-<seq>`` holds one ``set_many``
(many entries, framed as :mod:`.batch_object` describes). Objects are never
rewritten: every writer names its own (random writer id + sequence), so concurrent writers cannot
overwrite each other, and an S3 PUT is atomic, so a reader never sees half an object.

Reading loads an index: LIST the prefix once and GET every object into memory; later lookups
answer from it (a miss lists again for other writers' new objects once the index is older than
``refresh_interval``). Names start with the writer's clock, so they sort in write order; for a
key, the entry from the greatest object name wins. A merged object takes the place of its
newest member, so when two writers race on one key either (intact) value may win. Deletions are
tombstones (an empty entry).

To keep a cached rerun at a few GETs, each writer merges its own objects as it goes (``fanout``
objects of one level become one object of the next, named just after the newest of them), and a
reader that finds more than ``compact_threshold`` objects merges them all into one. A merge writes
the new object first and deletes the old ones after; a reader whose GET finds an object gone lists
again and picks up its replacement.

boto3 rather than s3fs: every request is explicit, so a rerun's GET count is exactly the number
of objects, and botocore's ``standard`` retry mode retries 500/503 SlowDown and connection errors.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..backends.storage import StorageBackend
from ..errors import ConfigurationError, ThemisError
from . import CacheIntegrityWarning, decode_value, encode_value
from .batch_object import decode_batch, encode_batch
from .urls import redact_url

__all__ = ["S3Storage", "S3StorageError"]

_INSTALL = 'pip install "pytest-themis[s3]"'
_MISSING_RETRIES = 5


def _parse_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.hostname:
        raise ConfigurationError(
            f"S3Storage needs a URL like s3://bucket/prefix, got {redact_url(url)!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            "S3Storage URL must not carry credentials; set AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) instead"
        )
    prefix = parts.path.strip("/")
    return parts.netloc, (prefix + "/" if prefix else "")


class S3StorageError(ThemisError):
    """An S3 request still failed after botocore's retries (the store's data is unchanged)."""


class _OwnObject:
    """An object this writer put: its name, merge level and entries (to merge without GETs)."""

    __slots__ = ("entries", "level", "name")

    def __init__(self, name: str, level: int, entries: list[tuple[str, bytes]]) -> None:
        self.name = name
        self.level = level
        self.entries = entries


class S3Storage(StorageBackend):
    """Generations and run records as immutable batch objects under ``s3://bucket/prefix``.

    ``endpoint_url`` points at MinIO/Ceph/R2/a test server (``AWS_ENDPOINT_URL`` is honoured
    too); region and credentials come from the usual AWS environment variables, profile or
    ``client_options`` (passed to ``boto3.client``; never shown by ``describe``/``repr``).
    ``batch_size`` caps the entries per object written by ``set_many``; ``fanout`` and
    ``compact_threshold`` control merging (see the module docstring); ``max_attempts`` is the
    tries per request (botocore's ``standard`` mode: 500, 503 SlowDown, throttling and
    connection errors, with backoff), after which an :class:`S3StorageError` is raised;
    ``refresh_interval`` is how old (seconds) the index may be before a miss lists the bucket
    again for other writers' new objects.
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        batch_size: int = 1000,
        fanout: int = 8,
        compact_threshold: int = 64,
        refresh_interval: float = 30.0,
        max_attempts: int = 10,
        **client_options: Any,
    ) -> None:
        self.bucket, self.prefix = _parse_url(url)
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("fanout", fanout, 2),
            ("compact_threshold", compact_threshold, 2),
            ("max_attempts", max_attempts, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ConfigurationError(f"S3Storage {name} must be an integer >= {low}")
        if not isinstance(refresh_interval, (int, float)) or refresh_interval < 0:
            raise ConfigurationError("S3Storage refresh_interval must be a number of seconds >= 0")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self.batch_size = batch_size
        self.fanout = fanout
        self.compact_threshold = compact_threshold
        self.refresh_interval = refresh_interval
        self.max_attempts = max_attempts
        self._client_options = client_options
        self._reset()

    # -- lifecycle ---------------------------------------------------------------------------

    def _reset(self) -> None:
        self._client: Any = None
        self._lock = threading.RLock()
        self._index: dict[str, tuple[str, bytes]] = {}
        self._seen: set[str] = set()
        self._loaded_at: float | None = None
        self._own: list[_OwnObject] = []
        self._writer = secrets.token_hex(6)
        self._pid = os.getpid()
        self._seq = 0
        self._last_ns = 0

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        state["_client_options"] = self._client_options
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()  # a copy in another process is another writer with its own index

    def open(self) -> None:
        """Check, before any model request, that the bucket is reachable with these credentials.

        Raises a one-line :class:`ConfigurationError` naming the fix for a missing ``boto3``,
        missing credentials, an unreachable endpoint or a missing/forbidden bucket.
        """
        client, retrying = self._connect()
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        where = self._where()
        try:
            try:
                client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) < 500:
                    raise
                retrying.head_bucket(Bucket=self.bucket)  # a busy server: the full retry budget
        except NoCredentialsError:
            raise ConfigurationError(self._no_credentials()) from None
        except EndpointConnectionError:
            raise ConfigurationError(
                f"cannot reach the S3 endpoint {where}; start the server or fix endpoint_url / "
                "AWS_ENDPOINT_URL"
            ) from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise ConfigurationError(
                    f"S3 bucket {self.bucket!r} does not exist at {where}; create it "
                    f"(aws s3 mb s3://{self.bucket}) or fix the storage URL"
                ) from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ConfigurationError(
                    f"S3 refused access to bucket {self.bucket!r} at {where} ({code}); check "
                    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
                ) from None
            raise ConfigurationError(
                f"S3 bucket {self.bucket!r} at {where} is not usable ({code or exc}); "
                "check the storage URL and credentials"
            ) from None
        except BotoCoreError as exc:
            raise ConfigurationError(
                f"cannot use S3 at {where} ({type(exc).__name__}); check endpoint_url / "
                "AWS_ENDPOINT_URL and the region"
            ) from None
        self._client = retrying
        self._pid = os.getpid()

    def close(self) -> None:
        with self._lock:
            self._client = None

    @property
    def client(self) -> Any:
        """The boto3 S3 client (created, and checked with :meth:`open`, on first use)."""
        if self._client is None or self._pid != os.getpid():
            if self._pid != os.getpid():
                self._reset()  # forked: a new writer, and no shared connection pool
            self.open()
        return self._client

    def _connect(self) -> tuple[Any, Any]:
        """Two clients on one session: a quick one for :meth:`open`, and the retrying one."""
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError
        except ImportError:
            raise ConfigurationError(f"S3Storage needs boto3: {_INSTALL}") from None
        options = dict(self._client_options)
        user_config = options.pop("config", None)
        session = boto3.session.Session()
        if not (options.get("aws_access_key_id") or session.get_credentials()):
            raise ConfigurationError(self._no_credentials())
        clients = []
        for attempts in (2, self.max_attempts):
            config = Config(
                retries={"total_max_attempts": attempts, "mode": "standard"},
                connect_timeout=2 if attempts == 2 else 10,
                read_timeout=60,
                s3={"addressing_style": "path"} if self._endpoint() else {},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            try:
                client = session.client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region_name or session.region_name or "us-east-1",
                    config=user_config.merge(config) if user_config is not None else config,
                    **options,
                )
            except BotoCoreError as exc:  # partial credentials, a malformed region …
                raise ConfigurationError(
                    f"cannot set up the S3 client for {self.url} ({type(exc).__name__}); check "
                    "region_name and the aws_* options"
                ) from None
            except ValueError:  # botocore: "Invalid endpoint"
                raise ConfigurationError(
                    f"S3 endpoint {self._where()!r} is not a URL like http://host:port; fix "
                    "endpoint_url / AWS_ENDPOINT_URL"
                ) from None
            except TypeError:
                names = ", ".join(sorted(options))
                raise ConfigurationError(
                    f"S3Storage got options boto3.client does not take ({names}); see boto3's "
                    "Session.client for the valid ones"
                ) from None
            clients.append(client)
        return clients[0], clients[1]

    def _endpoint(self) -> str | None:
        return (
            self.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )

    def _where(self) -> str:
        endpoint = self._endpoint()
        return redact_url(endpoint) if endpoint else "AWS S3"

    def _no_credentials(self) -> str:
        return (
            f"no AWS credentials for {self.url}; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass aws_access_key_id=/"
            "aws_secret_access_key= to S3Storage"
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": type(self).__name__,
            "engine": "s3",
            "url": self.url,
            "endpoint": self._where(),
        }

    def __repr__(self) -> str:
        endpoint = redact_url(self.endpoint_url) if self.endpoint_url else None
        suffix = f", endpoint_url={endpoint!r}" if endpoint else ""
        return f"S3Storage({self.url!r}{suffix})"

    @contextlib.contextmanager
    def _requests(self, what: str) -> Iterator[None]:
        """Turn a request that failed after its retries into one :class:`S3StorageError` line."""
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise ConfigurationError(f"S3Storage needs boto3: {_INSTALL}") from None

        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise S3StorageError(
                f"S3 {what} in {self.url} failed after {self.max_attempts} attempts ({code})"
            ) from None
        except BotoCoreError as exc:
            raise S3StorageError(
                f"S3 {what} in {self.url} failed after {self.max_attempts} attempts "
                f"({type(exc).__name__})"
            ) from None

    # -- reading -----------------------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock, self._requests("read"):
            self._ensure_loaded()
            if (
                self._loaded_at is not None
                and any(k not in self._index for k in keys)
                and time.monotonic() - self._loaded_at > self.refresh_interval
            ):
                self.refresh()
            found: dict[str, dict[str, Any]] = {}
            for key in keys:
                entry = self._index.get(key)
                if entry is None or not entry[1]:
                    continue
                value = decode_value(entry[1])
                if value is None:
                    warnings.warn(
                        f"cache entry {key[:16]}… in {self.url} (object {entry[0]}) failed its "
                        "integrity check; it will be regenerated",
                        CacheIntegrityWarning,
                        stacklevel=3,
                    )
                    del self._index[key]
                    continue
                found[key] = value
            return found

    def keys(self, prefix: str = "") -> Iterator[str]:
        with self._lock, self._requests("listing"):
            self.refresh()
            found = [k for k, (_, data) in self._index.items() if data and k.startswith(prefix)]
        return iter(sorted(found))

    def refresh(self) -> None:
        """List the bucket and load the objects not seen yet (other writers' new batches)."""
        with self._lock, self._requests("listing"):
            for _ in range(_MISSING_RETRIES):
                names = self._list()
                missing = [n for n in names if n not in self._seen]
                if all(self._load_object(n) for n in missing):
                    break
            self._loaded_at = time.monotonic()
            if len(names) > self.compact_threshold:
                try:
                    self.compact()
                except Exception as exc:  # read-only credentials: keep reading, just slower
                    warnings.warn(
                        f"could not compact {len(names)} objects in {self.url} "
                        f"({type(exc).__name__}); reruns will need more GETs",
                        stacklevel=2,
                    )

    def _ensure_loaded(self) -> None:
        if self._loaded_at is None:
            self.refresh()

    def _list(self) -> list[str]:
        client = self.client
        names: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + "objects/"
        ):
            names.extend(item["Key"] for item in page.get("Contents", ()))
        names.sort()
        return names

    def _load_object(self, name: str) -> bool:
        """Merge object ``name`` into the index; False when it was deleted meanwhile."""
        client = self.client
        try:
            body = client.get_object(Bucket=self.bucket, Key=name)["Body"].read()
        except client.exceptions.NoSuchKey:
            return False
        entries, intact = decode_batch(body)
        if not intact:
            warnings.warn(
                f"S3 object {name} in {self.url} is not a readable batch; "
                f"kept {len(entries)} entries before the damage",
                CacheIntegrityWarning,
                stacklevel=4,
            )
        self._apply(name, entries)
        self._seen.add(name)
        return True

    def _apply(self, name: str, entries: Iterable[tuple[str, bytes]]) -> None:
        index = self._index
        for key, data in entries:
            current = index.get(key)
            if current is None or current[0] <= name:
                index[key] = (name, data)

    # -- writing -----------------------------------------------------------------------------

    def set(self, key: str, value: dict[str, Any]) -> None:
        self.set_many([(key, value)])

    def set_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        encoded = [(k, encode_value(v)) for k, v in items]
        with self._lock, self._requests("write"):
            for start in range(0, len(encoded), self.batch_size):
                self._write(encoded[start : start + self.batch_size])

    def delete(self, key: str) -> None:
        with self._lock, self._requests("delete"):
            self._write([(key, b"")])

    def _next_name(self) -> str:
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        self._seq += 1
        return f"{self.prefix}objects/{now:020d}-{self._writer}-{self._seq:08d}"

    def _write(self, entries: list[tuple[str, bytes]]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client
        name = self._next_name()
        client.put_object(Bucket=self.bucket, Key=name, Body=encode_batch(entries))
        self._seen.add(name)
        self._apply(name, entries)
        self._own.append(_OwnObject(name, 0, entries))
        try:
            self._merge_own()
        except (BotoCoreError, ClientError) as exc:  # the batch is stored; only tidying failed
            warnings.warn(
                f"could not merge objects in {self.url} ({type(exc).__name__}); the data is "
                "stored, reruns will need more GETs",
                stacklevel=5,
            )

    def _merge_own(self) -> None:
        """Tiered merging of this writer's objects: ``fanout`` of a level make one of the next."""
        while True:
            last = self._own[-1].level if self._own else None
            run = [o for o in self._own if o.level == last]
            if last is None or len(run) < self.fanout:
                return
            merged: dict[str, bytes] = {}
            for obj in run:  # oldest first, so the newest entry for a key wins
                merged.update(obj.entries)
            # Sorts right after the newest member and before anything newer; the writer id keeps
            # it unique (another writer may compact the same members at the same time).
            name = f"{run[-1].name}~{self._writer}"
            entries = list(merged.items())
            self.client.put_object(Bucket=self.bucket, Key=name, Body=encode_batch(entries))
            self._seen.add(name)
            self._apply(name, entries)
            self._delete_objects([o.name for o in run])
            self._own = [o for o in self._own if o.level != last]
            self._own.append(_OwnObject(name, last + 1, entries))

    def compact(self) -> None:
        """Merge every object under the prefix (all writers) into one, then delete the old ones."""
        with self._lock, self._requests("compaction"):
            names = self._list()
            for name in names:
                if name not in self._seen and not self._load_object(name):
                    return  # someone else is compacting; their result will do
            if len(names) < 2:
                return
            target = f"{max(names)}~{self._writer}"
            entries = [(k, data) for k, (_, data) in self._index.items()]
            self.client.put_object(Bucket=self.bucket, Key=target, Body=encode_batch(entries))
            self._seen.add(target)
            self._apply(target, entries)
            self._delete_objects(names)
            self._own = []

    def _delete_objects(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):
            chunk = names[start : start + 1000]
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": n} for n in chunk], "Quiet": True},
            )

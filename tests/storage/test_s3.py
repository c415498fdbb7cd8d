"""S3Storage against moto's real S3 server (and a fault-injecting proxy in front of it)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
import warnings
from typing import Any

import pytest
from support.s3_server import FAKE_ENV, FaultProxy, MotoServer
from support.services import free_port
from support.sweeps import demo_twice, rerun_from_store

from pytest_themis.errors import ConfigurationError
from pytest_themis.storage import CacheIntegrityWarning, decode_value, encode_value
from pytest_themis.storage.batch_object import decode_batch, encode_batch
from pytest_themis.storage.s3 import S3Storage
from pytest_themis.testing.polling import wait_for

CANARY = "canary-SECRET-4f1d9e"


def _raw_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def _objects(endpoint: str, bucket: str) -> list[str]:
    pages = _raw_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))


def _store(endpoint: str, bucket: str, **options: Any) -> S3Storage:
    return S3Storage(f"s3://{bucket}/runs/a", endpoint_url=endpoint, **options)


def test_round_trip_keys_delete_and_a_fresh_reader(s3_server: MotoServer, s3_bucket: str) -> None:
    store = _store(s3_server.endpoint, s3_bucket)
    store.open()
    store.set("run:one", {"n": 1})
    store.set_many([(f"gen:{i}", {"text": f"ünïcode {i}\n", "i": i}) for i in range(20)])
    store.delete("gen:3")
    assert store.get("gen:5") == {"text": "ünïcode 5\n", "i": 5}
    assert store.get("gen:3") is None and store.get("gen:missing") is None

    fresh = _store(s3_server.endpoint, s3_bucket)
    found = fresh.get_many([f"gen:{i}" for i in range(25)])
    assert sorted(found) == sorted(f"gen:{i}" for i in range(20) if i != 3)
    assert found["gen:7"] == {"text": "ünïcode 7\n", "i": 7}
    assert list(fresh.keys("run:")) == ["run:one"]
    assert fresh.get("run:one") == {"n": 1}
    # Nothing outside the prefix is touched.
    assert all(
        name.startswith("runs/a/objects/") for name in _objects(s3_server.endpoint, s3_bucket)
    )


def test_every_entry_keeps_the_checksummed_encoding(s3_server: MotoServer, s3_bucket: str) -> None:
    store = _store(s3_server.endpoint, s3_bucket)
    store.set_many([("gen:a", {"text": "A"}), ("gen:b", {"text": "B"})])
    (name,) = _objects(s3_server.endpoint, s3_bucket)
    body = _raw_client(s3_server.endpoint).get_object(Bucket=s3_bucket, Key=name)["Body"].read()
    entries, intact = decode_batch(body)
    assert intact and dict(entries) == {
        "gen:a": encode_value({"text": "A"}),
        "gen:b": encode_value({"text": "B"}),
    }

    # A damaged entry (bit flip in its body) is reported and left out, its neighbour survives.
    bad = encode_value({"text": "C"}).replace(b'"C"', b'"X"')
    assert decode_value(bad) is None
    _raw_client(s3_server.endpoint).put_object(
        Bucket=s3_bucket,
        Key="runs/a/objects/99999999999999999999-ffffffffffff-00000001",
        Body=encode_batch([("gen:c", bad), ("gen:d", encode_value({"text": "D"}))]),
    )
    fresh = _store(s3_server.endpoint, s3_bucket)
    with pytest.warns(CacheIntegrityWarning, match="integrity"):
        found = fresh.get_many(["gen:a", "gen:c", "gen:d"])
    assert found == {"gen:a": {"text": "A"}, "gen:d": {"text": "D"}}


def test_records_are_batch_objects_not_one_per_sample(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    store = _store(s3_server.endpoint, s3_bucket, batch_size=250)
    for start in range(0, 2000, 100):  # 20 set_many calls of 100 records
        store.set_many([(f"gen:{i}", {"i": i}) for i in range(start, start + 100)])
    names = _objects(s3_server.endpoint, s3_bucket)
    # 20 PUTs of 100 records, merged 8 → 1 as the writer goes: 2 merged objects + 4 recent ones.
    assert len(names) == 6, names
    fresh = _store(s3_server.endpoint, s3_bucket)
    assert len(fresh.get_many([f"gen:{i}" for i in range(2000)])) == 2000
    # batch_size splits one large set_many into several objects
    other = S3Storage(f"s3://{s3_bucket}/big", endpoint_url=s3_server.endpoint, batch_size=250)
    other.set_many([(f"gen:{i}", {"i": i}) for i in range(1000)])
    assert len([n for n in _objects(s3_server.endpoint, s3_bucket) if n.startswith("big/")]) == 4


def test_newest_write_wins_across_merges_and_tombstones(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    store = _store(s3_server.endpoint, s3_bucket, fanout=3)
    for version in range(10):  # one object per set: merged at levels 1 and 2 on the way
        store.set("gen:k", {"v": version})
        store.set(f"gen:other{version}", {"v": version})
    store.delete("gen:other4")
    fresh = _store(s3_server.endpoint, s3_bucket)
    assert fresh.get("gen:k") == {"v": 9}
    assert fresh.get("gen:other4") is None
    assert fresh.get("gen:other5") == {"v": 5}
    assert "gen:other4" not in set(fresh.keys("gen:"))


def test_cached_reread_needs_few_gets_and_compacts_leftovers(
    s3_server: MotoServer, s3_bucket: str, s3_proxy: FaultProxy
) -> None:
    # A writer that never merges (as if killed before it could) leaves 30 small objects.
    writer = _store(s3_server.endpoint, s3_bucket, fanout=1000)
    for i in range(30):
        writer.set(f"gen:{i}", {"i": i})
    assert len(_objects(s3_server.endpoint, s3_bucket)) == 30

    reader = _store(s3_proxy.endpoint, s3_bucket, compact_threshold=20)
    assert len(reader.get_many([f"gen:{i}" for i in range(30)])) == 30
    assert len(_objects(s3_server.endpoint, s3_bucket)) == 1  # the reader compacted them

    s3_proxy.reset()
    again = _store(s3_proxy.endpoint, s3_bucket)
    assert len(again.get_many([f"gen:{i}" for i in range(30)])) == 30
    assert s3_proxy.counts["GET"] == 2, s3_proxy.counts  # one LIST + one GET
    assert s3_proxy.counts["PUT"] == 0


def test_a_reader_survives_a_compaction_between_list_and_get(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    writer = _store(s3_server.endpoint, s3_bucket, fanout=1000)
    for i in range(10):
        writer.set(f"gen:{i}", {"i": i})
    compactor = _store(s3_server.endpoint, s3_bucket)

    class Racing(S3Storage):
        lists = 0

        def _list(self) -> list[str]:
            names = super()._list()
            self.lists += 1
            if self.lists == 1:  # another process compacts right after this LIST
                compactor.compact()
            return names

    reader = Racing(f"s3://{s3_bucket}/runs/a", endpoint_url=s3_server.endpoint)
    assert len(reader.get_many([f"gen:{i}" for i in range(10)])) == 10
    assert reader.lists == 2  # its first GET found the object gone, so it listed again
    assert len(_objects(s3_server.endpoint, s3_bucket)) == 1


_WRITER = textwrap.dedent(
    """
    import sys
    from pytest_themis.storage.s3 import S3Storage
    url, endpoint, tag = sys.argv[1:4]
    store = S3Storage(url, endpoint_url=endpoint, fanout=4)
    for start in range(0, 600, 20):
        batch = range(start, start + 20)
        store.set_many([(f"gen:{i}", {"writer": tag, "i": i, "pad": tag * 50}) for i in batch])
        store.set_many([(f"gen:{tag}:{start}", {"writer": tag, "i": start})])
    """
)


@pytest.mark.slow
def test_two_writer_processes_at_once_leave_every_entry_intact(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/shared"
    env = {**os.environ, **FAKE_ENV}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, url, s3_server.endpoint, tag], env=env)
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]

    reader = S3Storage(url, endpoint_url=s3_server.endpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheIntegrityWarning)  # any failed checksum fails
        found = reader.get_many([f"gen:{i}" for i in range(600)])
        own = {k: reader.get(k) for k in reader.keys("gen:a:")} | {
            k: reader.get(k) for k in reader.keys("gen:b:")
        }
    assert len(found) == 600
    for i, value in ((int(k[4:]), v) for k, v in found.items()):
        assert value["i"] == i and value["writer"] in "ab" and value["pad"] == value["writer"] * 50
    assert len(own) == 60 and all(v is not None for v in own.values())
    # Every stored entry of every object (merged or not) passes its checksum.
    client = _raw_client(s3_server.endpoint)
    for name in _objects(s3_server.endpoint, s3_bucket):
        entries, intact = decode_batch(client.get_object(Bucket=s3_bucket, Key=name)["Body"].read())
        assert intact and all(decode_value(data) is not None for _, data in entries)


@pytest.mark.slow
def test_evaluate_completes_through_10_percent_faults_and_reruns_from_the_store(
    s3_server: MotoServer, s3_bucket: str, s3_proxy: FaultProxy
) -> None:
    from pytest_themis import evaluate

    s3_proxy.fault_rate = 0.10
    # One entry per object whatever the runner batches: the same request sequence every time.
    storage = S3Storage(f"s3://{s3_bucket}/demo", endpoint_url=s3_proxy.endpoint, batch_size=1)
    options: dict[str, Any] = {"model": "fake:fake-math-llm", "max_parallel": 1, "latency": 0.02}
    first = evaluate("demo", storage=storage, **options)
    assert len(first.records) == 50 and not first.failures
    assert all(r.generation.error is None for r in first.records)
    assert s3_proxy.counts["PUT"] >= 50 and s3_proxy.faults >= 3, (s3_proxy.counts, s3_proxy.faults)

    # Merged 8 → 1 as they came: under 512 writes leave at most 7 objects on each of 3 levels.
    objects = len(_objects(s3_server.endpoint, s3_bucket))
    assert objects <= 21, objects

    s3_proxy.reset()
    rerun_store = S3Storage(f"s3://{s3_bucket}/demo", endpoint_url=s3_proxy.endpoint)
    again = rerun_from_store(first, "demo", storage=rerun_store, **options)
    assert s3_proxy.counts["GET"] == 1 + objects, s3_proxy.log  # one LIST, each object once
    manifest = rerun_store.get("run:" + again.run_id)
    assert manifest is not None and manifest["run_id"] == again.run_id


@pytest.mark.parametrize("case", ["missing bucket", "no credentials", "unreachable endpoint"])
def test_bad_setup_is_one_line_error_before_any_request(
    case: str,
    s3_server: MotoServer,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_themis import evaluate

    endpoint, bucket = s3_server.endpoint, s3_bucket
    if case == "missing bucket":
        bucket = "no-such-bucket-themis"
        expected = "does not exist"
    elif case == "no credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        expected = "no AWS credentials"
    else:
        endpoint = f"http://127.0.0.1:{free_port()}"
        expected = "cannot reach the S3 endpoint"
    calls: list[str] = []

    def model(prompt: str) -> str:
        calls.append(prompt)
        return "0"

    started = time.monotonic()
    with pytest.raises(ConfigurationError) as info:
        evaluate(
            dataset=[{"q": "1+1", "a": "2"}],
            prompt="{q}",
            reference_field="a",
            metrics=["exact_match"],
            model=model,
            storage=S3Storage(f"s3://{bucket}/x", endpoint_url=endpoint),
        )
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert not calls
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"endpoint_url": "not a url"}, "is not a URL"),
        ({"aws_access_key_id": "AKIAEXAMPLE"}, "PartialCredentialsError"),
        ({"region_name": "not a region!"}, "InvalidRegionError"),
        ({"aws_secret_access_key": CANARY, "no_such_option": 1}, "no_such_option"),
    ],
)
def test_bad_client_options_are_one_line_errors(
    options: dict[str, Any], expected: str, s3_env: dict[str, str]
) -> None:
    with pytest.raises(ConfigurationError, match=expected) as info:
        S3Storage("s3://bucket/prefix", **options).open()
    assert "\n" not in str(info.value)
    assert CANARY not in str(info.value)


def test_bad_url_and_missing_boto3_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="s3://bucket/prefix"):
        S3Storage("https://bucket/prefix")
    with pytest.raises(ConfigurationError, match="must not carry credentials") as info:
        S3Storage(f"s3://key:{CANARY}@bucket/prefix")
    assert CANARY not in str(info.value)
    with pytest.raises(ConfigurationError, match="batch_size must be an integer >= 1"):
        S3Storage("s3://bucket/prefix", batch_size=0)
    with pytest.raises(ConfigurationError, match="refresh_interval"):
        S3Storage("s3://bucket/prefix", refresh_interval=-1)
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "botocore", None)
    monkeypatch.setitem(sys.modules, "botocore.exceptions", None)
    store = S3Storage("s3://bucket/prefix")
    for use in (store.open, lambda: store.get("k"), lambda: store.set("k", {})):
        with pytest.raises(ConfigurationError, match=r'pip install "pytest-themis\[s3\]"'):
            use()


def test_credentials_never_reach_describe_repr_or_the_manifest(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    from pytest_themis import evaluate

    store = S3Storage(
        f"s3://{s3_bucket}/secret",
        endpoint_url=f"http://user:{CANARY}@127.0.0.1:{s3_server.endpoint.rsplit(':', 1)[1]}",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key=CANARY,
    )
    report = evaluate("demo", model="fake:fake-math-llm", storage=store, limit=3)
    assert CANARY not in repr(store)
    assert CANARY not in json.dumps(store.describe())
    assert CANARY not in json.dumps(report.manifest, default=str)
    assert CANARY not in json.dumps(store.get("run:" + report.run_id))
    port = s3_server.endpoint.rsplit(":", 1)[1]
    assert store.describe()["endpoint"] == f"http://user:***@127.0.0.1:{port}"


def test_picklable_and_a_copy_is_a_new_writer(s3_server: MotoServer, s3_bucket: str) -> None:
    store = _store(s3_server.endpoint, s3_bucket)
    store.set("gen:x", {"v": 1})
    copy = pickle.loads(pickle.dumps(store))
    assert copy._client is None and copy._writer != store._writer
    assert copy.get("gen:x") == {"v": 1}
    copy.set("gen:y", {"v": 2})
    assert _store(s3_server.endpoint, s3_bucket).get_many(["gen:x", "gen:y"]) == {
        "gen:x": {"v": 1},
        "gen:y": {"v": 2},
    }


def test_an_s3_url_opens_with_the_endpoint_from_aws_endpoint_url(
    s3_server: MotoServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_themis.storage.urls import open_storage

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    store = open_storage(f"s3://{s3_bucket}/via-url")
    assert isinstance(store, S3Storage)
    assert store.describe() == {
        "name": "S3Storage",
        "engine": "s3",
        "url": f"s3://{s3_bucket}/via-url",
        "endpoint": s3_server.endpoint,
    }
    store.set("gen:u", {"v": 1})
    assert any(n.startswith("via-url/") for n in _objects(s3_server.endpoint, s3_bucket))

    from pytest_themis import evaluate

    url = f"s3://{s3_bucket}/via-evaluate"
    first = evaluate("demo", model="fake:fake-math-llm", storage=url, limit=5)
    assert len(first.records) == 5 and not any(r.generation.cached for r in first.records)
    again = rerun_from_store(first, "demo", model="fake:fake-math-llm", storage=url, limit=5)
    assert again.manifest["settings"]["cache"]["url"] == url


def test_a_request_failing_after_its_retries_is_one_storage_error(
    s3_server: MotoServer, s3_bucket: str, s3_proxy: FaultProxy
) -> None:
    from pytest_themis.storage.s3 import S3StorageError

    store = _store(s3_proxy.endpoint, s3_bucket, max_attempts=2)
    store.open()
    s3_proxy.fault_rate = 1.0
    with pytest.raises(S3StorageError, match=r"write .* failed after 2 attempts") as info:
        store.set("gen:x", {"v": 1})
    assert "\n" not in str(info.value)
    assert s3_proxy.faults == 2  # the first try and one retry, nothing forwarded
    s3_proxy.fault_rate = 0.0
    store.set("gen:x", {"v": 2})
    assert _store(s3_server.endpoint, s3_bucket).get("gen:x") == {"v": 2}


@pytest.mark.slow
def test_pytest_door_stores_in_s3_and_reruns_from_it(
    s3_server: MotoServer,
    s3_bucket: str,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)  # the server accepts any key
    demo_twice(pytester, f"s3://{s3_bucket}/pytest", CANARY)
    assert any(n.startswith("pytest/objects/") for n in _objects(s3_server.endpoint, s3_bucket))
    assert not (pytester.path / ".themis_cache" / "cache.db").exists()  # no generation in a folder


def test_boto3_is_imported_only_when_an_s3_store_is_used() -> None:
    code = textwrap.dedent(
        """
        import sys
        import pytest_themis
        from pytest_themis.storage.s3 import S3Storage
        from pytest_themis.storage.urls import check_storage_spec
        store = S3Storage(check_storage_spec("s3://bucket/prefix"))
        repr(store), store.describe()
        print(sorted({m.split(".")[0] for m in sys.modules} & {"boto3", "botocore", "s3transfer"}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_open_rides_out_server_errors_on_its_check(
    s3_server: MotoServer, s3_bucket: str, s3_proxy: FaultProxy
) -> None:
    store = _store(s3_proxy.endpoint, s3_bucket, max_attempts=8)
    s3_proxy.fail_next = 3  # both tries of the quick check, then one of the retrying client
    store.open()
    assert s3_proxy.faults == 3 and s3_proxy.counts["HEAD"] == 1


def test_a_miss_relists_only_when_the_index_is_older_than_refresh_interval(
    s3_server: MotoServer, s3_bucket: str, s3_proxy: FaultProxy
) -> None:
    writer = _store(s3_server.endpoint, s3_bucket)
    patient = _store(s3_proxy.endpoint, s3_bucket, refresh_interval=3600)
    eager = _store(s3_proxy.endpoint, s3_bucket, refresh_interval=0)
    assert patient.get("gen:late") is None and eager.get("gen:late") is None
    writer.set("gen:late", {"v": 1})
    s3_proxy.reset()
    assert patient.get("gen:late") is None  # answered from its index: no request
    assert s3_proxy.total() == 0
    assert eager.get("gen:late") == {"v": 1}  # one LIST + one GET of the new object
    assert s3_proxy.counts["GET"] == 2
    patient.refresh()
    assert patient.get("gen:late") == {"v": 1}


_KILLED_DRIVER = textwrap.dedent(
    """
    import sys
    from pytest_themis import evaluate
    from pytest_themis.storage.s3 import S3Storage
    url, endpoint = sys.argv[1:3]
    rows = [{"q": f"{i}+1", "a": str(i + 1)} for i in range(300)]
    evaluate(dataset=rows, prompt="{q}", reference_field="a", metrics=["exact_match"],
             model="fake:fake-math-llm", latency=0.05, max_parallel=2,
             storage=S3Storage(url, endpoint_url=endpoint))
    """
)


@pytest.mark.slow
def test_a_sigkilled_driver_leaves_only_intact_entries_and_the_rerun_resumes(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    from pytest_themis import evaluate

    url = f"s3://{s3_bucket}/killed"
    env = {**os.environ, **FAKE_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_DRIVER, url, s3_server.endpoint], env=env
    )
    try:
        wait_for(
            lambda: len(_objects(s3_server.endpoint, s3_bucket)) >= 12 or proc.poll() is not None,
            120,
            "the driver storing 12 objects",
        )
    finally:
        proc.kill()
        proc.wait()
    stored = S3Storage(url, endpoint_url=s3_server.endpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheIntegrityWarning)
        before = len(list(stored.keys("gen:")))
    assert 0 < before < 300

    rows = [{"q": f"{i}+1", "a": str(i + 1)} for i in range(300)]
    rerun = evaluate(
        dataset=rows,
        prompt="{q}",
        reference_field="a",
        metrics=["exact_match"],
        model="fake:fake-math-llm",
        latency=0.05,
        max_parallel=2,
        storage=S3Storage(url, endpoint_url=s3_server.endpoint),
    )
    assert len(rerun.records) == 300 and not rerun.failures
    assert sum(r.generation.cached for r in rerun.records) == before


@pytest.mark.slow
def test_compacting_while_a_writer_merges_loses_nothing(
    s3_server: MotoServer, s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/busy"
    env = {**os.environ, **FAKE_ENV}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, url, s3_server.endpoint, "w"], env=env)
    compactions = 0
    try:
        while proc.poll() is None:  # compact over and over while the writer writes and merges
            S3Storage(url, endpoint_url=s3_server.endpoint).compact()
            compactions += 1
    finally:
        assert proc.wait(timeout=300) == 0
    assert compactions >= 1  # at least one overlapped the writer (how many depends on load)
    reader = S3Storage(url, endpoint_url=s3_server.endpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheIntegrityWarning)
        found = reader.get_many([f"gen:{i}" for i in range(600)])
        own = list(reader.keys("gen:w:"))
    assert sorted(int(k[4:]) for k in found) == list(range(600))
    assert all(v == {"writer": "w", "i": int(k[4:]), "pad": "w" * 50} for k, v in found.items())
    assert len(own) == 30


def test_a_failed_merge_is_a_warning_and_the_written_batch_stays(
    s3_server: MotoServer, s3_bucket: str, s3_proxy: FaultProxy
) -> None:
    store = _store(s3_proxy.endpoint, s3_bucket, fanout=2, max_attempts=2)
    store.set("gen:a", {"v": 1})
    s3_proxy.fail_when = lambda method, path: method == "PUT" and "~" in path  # merged objects
    with pytest.warns(UserWarning, match="could not merge"):
        store.set("gen:b", {"v": 2})
    assert s3_proxy.faults == 2
    assert len(_objects(s3_server.endpoint, s3_bucket)) == 2
    fresh = _store(s3_server.endpoint, s3_bucket)
    assert fresh.get_many(["gen:a", "gen:b"]) == {"gen:a": {"v": 1}, "gen:b": {"v": 2}}

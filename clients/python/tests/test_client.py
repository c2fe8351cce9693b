"""The sync client against the real `akidb` binary: every operation, the errors, NumPy vectors,
batching, retries, API keys and TLS."""

from __future__ import annotations

import inspect
import socket
import threading
import time

import httpx
import numpy as np
import pytest

import akidb_client
from akidb_client import (
    AkiDBError,
    AsyncClient,
    Client,
    Collection,
    CollectionExists,
    CollectionNotFound,
    DocumentNotFound,
    InvalidArgument,
    InvalidBody,
    KeyNotFound,
    NotFound,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    TransportError,
    Unauthenticated,
)
from akidb_client.errors import error_class

from conftest import ADMIN_KEY, Server


@pytest.fixture
def db(server):
    with Client(server.url) as c:
        yield c


def test_collection_lifecycle(db, name):
    created = db.create_collection(name, dimension=4, metric="l2", m=8, ef_search=32)
    assert isinstance(created, Collection)
    assert (created.name, created.dimension, created.metric, created.count) == (name, 4, "l2", 0)
    assert (created.index.m, created.index.ef_search) == (8, 32)
    assert created.tier == "hot" and created.status == "ready"
    assert db.get_collection(name) == created
    assert name in [c.name for c in db.list_collections()]
    assert db.collection_exists(name)
    with pytest.raises(CollectionExists) as e:
        db.create_collection(name, dimension=4, metric="l2")
    assert e.value.status == 409 and e.value.code == "collection_exists"
    assert db.create_collection(name, dimension=4, metric="l2", exist_ok=True).id == created.id
    updated = db.update_collection(name, quantization="sq8")
    assert updated.quantization == "sq8"
    db.delete_collection(name)
    assert not db.collection_exists(name)
    with pytest.raises(CollectionNotFound):
        db.delete_collection(name)
    db.delete_collection(name, missing_ok=True)


def test_upsert_get_search_delete(db, name):
    db.create_collection(name, dimension=3, metric="cosine")
    written = db.upsert(
        name,
        [
            {"id": "a", "vector": [1, 0, 0], "metadata": {"lang": "en", "year": 2020}},
            {"id": "b", "vector": [0, 1, 0], "metadata": {"lang": "de", "year": 2021}},
            {"id": "c", "vector": [0.9, 0.1, 0], "metadata": {"lang": "en", "year": 2022}},
            {"vector": [0, 0, 1]},
        ],
    )
    assert written.upserted == 4 and written.ids[:3] == ["a", "b", "c"] and written.ids[3]
    result = db.search(name, [1, 0, 0], k=3)
    assert result.ids == ["a", "c", written.ids[3]] or result.ids[:2] == ["a", "c"]
    assert result[0].score == pytest.approx(1.0, abs=1e-5)
    assert result[0].metadata == {"lang": "en", "year": 2020}
    assert result[0].vector is None and result.latency_ms >= 0
    filtered = db.search(name, [1, 0, 0], k=10, filter={"lang": "en", "year": {"$in": [2022]}})
    assert filtered.ids == ["c"]
    bare = db.search(name, [1, 0, 0], k=1, include_metadata=False, include_vector=True)
    assert bare[0].metadata is None and bare[0].vector == pytest.approx([1, 0, 0])
    exact = db.search(name, [0, 1, 0], k=1, exact=True, report=True)
    assert exact.ids == ["b"] and exact.report is not None and exact.report.tier == "hot"
    doc = db.get(name, "b")
    assert doc.id == "b" and doc.vector == [0, 1, 0] and doc.metadata["lang"] == "de"
    assert db.get(name, written.ids[3]).metadata == {}
    assert db.delete(name, ["a", "zzz"]) == 1
    with pytest.raises(DocumentNotFound) as e:
        db.get(name, "a")
    assert isinstance(e.value, NotFound) and isinstance(e.value, LookupError)
    assert db.get_collection(name).count == 3


def test_numpy_in_and_out(db, name):
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((250, 8)).astype(np.float32)
    ids = [f"n{i}" for i in range(250)]
    db.create_collection(name, 8, "dot")
    written = db.upsert(
        name,
        ids=ids,
        vectors=vectors,
        metadata=[{"i": i} for i in range(250)],
        batch_size=64,
    )
    assert written.upserted == 250 and written.ids == ids
    hits = db.search(name, vectors[17], k=5, exact=True, include_vector=True, as_numpy=True)
    best = int(np.argmax(vectors @ vectors[17]))
    assert hits[0].id == f"n{best}"
    assert isinstance(hits[0].vector, np.ndarray) and hits[0].vector.dtype == np.float32
    np.testing.assert_array_equal(hits[0].vector, vectors[best])
    doc = db.get(name, "n3", as_numpy=True)
    np.testing.assert_array_equal(doc.vector, vectors[3])
    assert doc.metadata == {"i": 3}
    # Integer ids (NumPy's too) are sent as their decimal strings.
    db.upsert(name, ids=np.arange(1000, 1003), vectors=vectors[:3])
    assert db.get(name, "1001").vector == pytest.approx(vectors[1].tolist())


def test_errors_carry_code_message_and_field(db, name):
    db.create_collection(name, dimension=3, metric="cosine")
    docs = [{"id": f"d{i}", "vector": [1, 2, 3]} for i in range(7)]
    docs[5]["vector"] = [1, 2]
    with pytest.raises(InvalidArgument) as e:
        db.upsert(name, docs, batch_size=2)
    err = e.value
    assert (err.status, err.code) == (400, "invalid_argument")
    # The batch of documents 4 and 5 failed on its second: named by the index in the input.
    assert err.field == "documents[5].vector", err
    assert "dimension" in err.message or "3" in err.message
    assert isinstance(err, ValueError) and "documents[5].vector" in str(err)
    assert db.get_collection(name).count == 4  # the batches before it stayed written
    with pytest.raises(InvalidArgument) as e:
        db.search(name, [1, 2, 3], k=0)
    assert e.value.field == "k"
    with pytest.raises(CollectionNotFound) as e:
        db.search("no-such-collection", [1, 2, 3])
    assert e.value.status == 404 and "no-such-collection" in e.value.message
    with pytest.raises(InvalidArgument) as e:
        db.search(name, [1, 2, 3], filter={"lang": {"$regex": "x"}})
    assert e.value.field == "filter.lang.$regex" and "$regex" in e.value.message
    # Checked before sending: a NaN cannot be JSON, and the field is named the same way.
    with pytest.raises(InvalidArgument) as e:
        db.upsert(name, vectors=[[1, 2, 3], [1, float("nan"), 3]])
    assert e.value.field == "documents[1].vector" and e.value.status is None
    with pytest.raises(InvalidArgument) as e:
        db.create_collection(name + "x", dimension=3, metric="hamming")
    assert e.value.field == "metric"


def test_every_server_error_code_has_a_class(server):
    """The codes come from the server's own OpenAPI document, so a new code is not forgotten."""
    doc = httpx.get(f"{server.url}/openapi.json").json()
    error = doc["components"]["schemas"]["Error"]["properties"]["error"]
    codes = error["properties"]["code"]["enum"]
    assert len(codes) >= 21
    for code in codes:
        cls = error_class(code)
        assert cls is not AkiDBError and cls.code_name == code, code
        assert cls.__name__ in akidb_client.__all__
    assert error_class("a_code_from_the_future") is AkiDBError


def test_tiers(db, name):
    db.create_collection(name, dimension=2, metric="l2")
    db.upsert(name, ids=["x"], vectors=[[1, 2]])
    status = db.tier(name)
    assert status.tier == "hot" and not status.pinned
    demoted = db.set_tier(name, "demote", "warm")
    assert demoted.tier == "warm"
    assert db.tiers().warm.collections >= 1
    assert db.search(name, [1, 2], k=1).ids == ["x"]  # every tier answers
    assert db.set_tier(name, "pin").pinned
    assert not db.set_tier(name, "unpin").pinned
    totals = db.tiers()
    assert totals.hot.collections + totals.warm.collections >= 1
    with pytest.raises(InvalidArgument):
        db.set_tier(name, "teleport")


def test_api_keys_and_roles(auth_server, name):
    with Client(auth_server.url) as anon:
        with pytest.raises(Unauthenticated) as e:
            anon.list_collections()
        assert e.value.status == 401
    with Client(auth_server.url, api_key="wrong-key") as wrong:
        with pytest.raises(Unauthenticated):
            wrong.list_collections()
    with Client(auth_server.url, api_key=ADMIN_KEY) as admin:
        admin.create_collection(name, dimension=2, metric="l2")
        reader_key = admin.create_key("read", collections=[name], description="py test")
        assert reader_key.key and reader_key.role == "read"
        assert "key=" not in repr(reader_key)  # the key is not in its repr
        listed = {k.id: k for k in admin.list_keys()}
        assert listed[reader_key.id].collections == [name]
        assert listed[reader_key.id].description == "py test"
        with Client(auth_server.url, api_key=reader_key.key) as reader:
            assert reader.search(name, [0, 0], k=1).hits == []
            with pytest.raises(PermissionDenied) as e:
                reader.upsert(name, ids=["a"], vectors=[[1, 1]])
            assert e.value.status == 403
            admin.delete_key(reader_key.id)
            with pytest.raises(Unauthenticated):
                reader.search(name, [0, 0], k=1)
        with pytest.raises(KeyNotFound):
            admin.delete_key(reader_key.id)


def test_rate_limited_requests_are_retried_after_retry_after(auth_server, name):
    with Client(auth_server.url, api_key=ADMIN_KEY) as admin:
        admin.create_collection(name, dimension=2, metric="l2")
        slow = admin.create_key("read", limits={"requests_per_second": 1})
    no_retry = RetryPolicy(max_retries=0)
    with Client(auth_server.url, api_key=slow.key, retry=no_retry) as impatient:
        impatient.get_collection(name)
        with pytest.raises(RateLimited) as e:
            for _ in range(5):
                impatient.get_collection(name)
        assert e.value.status == 429 and e.value.retry_after is not None
    with Client(auth_server.url, api_key=slow.key) as patient:
        started = time.monotonic()
        for _ in range(3):
            assert patient.get_collection(name).name == name
        # Three requests at one per second: the retries waited for the server's Retry-After.
        assert time.monotonic() - started >= 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_errors_are_retried_then_raised(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with Client(url, retry=RetryPolicy(max_retries=1, backoff=0.01)) as c:
        with pytest.raises(TransportError) as e:
            c.list_collections()
        assert "ConnectError" in str(e.value) and not c.health()
    # A server that comes up while the client is retrying is reached.
    holder = {}

    def start_later() -> None:
        time.sleep(0.5)
        holder["server"] = Server(listen=f"127.0.0.1:{port}", data_dir=str(tmp_path))

    t = threading.Thread(target=start_later)
    t.start()
    try:
        with Client(url, retry=RetryPolicy(max_retries=12, backoff=0.1, max_backoff=1.0)) as c:
            assert c.list_collections() == []
    finally:
        t.join()
        holder["server"].close()


def test_tls_with_a_ca_bundle(tmp_path, name):
    # A self-signed certificate for 127.0.0.1, made with `cryptography` (pinned in scripts/requirements-test.txt).
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    s = Server(args=["--tls-cert", str(cert), "--tls-key", str(key)])
    try:
        assert s.url.startswith("https://")
        with Client(s.url, verify=str(cert)) as c:
            c.create_collection(name, dimension=2, metric="l2")
            assert [x.name for x in c.list_collections()] == [name]
        with Client(s.url, retry=RetryPolicy(max_retries=0)) as untrusting:
            with pytest.raises(TransportError) as e:
                untrusting.list_collections()
            assert "CERTIFICATE" in str(e.value).upper()
    finally:
        s.close()


def test_async_client_mirrors_the_sync_one():
    """Same public methods, same parameters: the two cannot drift apart unnoticed."""
    public = lambda cls: {  # noqa: E731
        n: inspect.signature(f)
        for n, f in inspect.getmembers(cls, inspect.isfunction)
        if not n.startswith("_")
    }
    sync, asyn = public(Client), public(AsyncClient)
    assert sync.keys() - {"close"} == asyn.keys() - {"close"}
    for n, sig in sync.items():
        assert sig.parameters.keys() == asyn[n].parameters.keys(), n
        f = getattr(AsyncClient, n)
        assert inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f), n
        assert getattr(Client, n).__doc__ == getattr(AsyncClient, n).__doc__, n


def test_arrow_bodies_store_what_json_bodies_store(db, name):
    """Columns and pyarrow tables go as Arrow IPC streams; the server stores the same documents
    as from JSON, and its errors name the row in the caller's input."""
    import pyarrow as pa

    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    ids = [f"r{i}" for i in range(300)]
    meta = [{"i": i, "tag": "even" if i % 2 == 0 else "odd"} if i % 3 else None for i in range(300)]
    db.create_collection(name, 16, "l2")
    db.create_collection(name + "-json", 16, "l2")
    arrow = db.upsert(name, ids=ids, vectors=vectors, metadata=meta, batch_size=128, binary=True)
    plain = db.upsert(name + "-json", ids=ids, vectors=vectors, metadata=meta, binary=False)
    assert arrow.ids == plain.ids == ids and arrow.upserted == 300
    for i in (0, 1, 2, 150, 299):
        a, j = db.get(name, ids[i]), db.get(name + "-json", ids[i])
        assert a == j and a.metadata == (meta[i] or {})
        np.testing.assert_array_equal(np.asarray(a.vector, dtype=np.float32), vectors[i])
    # A table, its vector column a plain list column, ids partly null (generated).
    table = pa.table(
        {
            "id": ["t0", None, "t2"],
            "vector": [[1.0] * 16, [2.0] * 16, [3.0] * 16],
            "metadata": ['{"from": "table"}', None, None],
        }
    )
    written = db.upsert(name, table)
    assert written.ids[0] == "t0" and written.ids[2] == "t2" and len(written.ids[1]) == 36
    assert db.get(name, "t0").metadata == {"from": "table"}
    assert db.get(name, written.ids[1]).vector == [2.0] * 16
    # Errors: a wrong dimension is named in the first batch that holds it, by input row.
    with pytest.raises(InvalidArgument) as e:
        db.upsert(name, ids=["x", "y"], vectors=np.ones((2, 15)), binary=True)
    assert e.value.field == "documents[0].vector" and e.value.status == 400
    bad = [{"ok": 1}] * 200 + [{"nan": float("nan")}]
    with pytest.raises(InvalidArgument) as e:
        db.upsert(name, vectors=np.ones((201, 16)), metadata=bad, binary=True)
    assert e.value.field == "documents[200].metadata.nan"
    huge_id = ["h" * 200] + ["ok"] * 150
    with pytest.raises(InvalidArgument) as e:
        db.upsert(name, ids=huge_id[::-1], vectors=np.ones((151, 16)), batch_size=100)
    assert e.value.field == "documents[150].id", e.value
    with pytest.raises(InvalidArgument) as e:
        db.upsert(name, pa.table({"id": ["q"], "vector": [[1.0, 2.0]]}))
    assert e.value.field == "documents[0].vector"
    with pytest.raises(InvalidBody) as e:
        db.upsert(name, pa.table({"vector": [[1.0] * 16], "colour": ["red"]}))
    assert e.value.field == "colour" and e.value.status == 422


def test_a_body_that_is_not_arrow_is_refused_with_its_reason(server, name):
    with Client(server.url) as db:
        db.create_collection(name, 2, "l2")
    r = httpx.post(
        f"{server.url}/api/v1/collections/{name}/documents",
        content=b"not an arrow stream",
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_body"
    assert "Arrow IPC" in r.json()["error"]["message"]
    r = httpx.post(
        f"{server.url}/api/v1/collections/{name}/documents",
        content=b"x",
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 415 and "arrow" in r.json()["error"]["message"].lower()

"""The deposit flow against the local Zenodo stand-in, with injected faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mfcurate.publish.deposit import DepositError, deposit_package
from mfcurate.publish.package import build_package
from mfcurate.publish.zenodo import ZenodoClient, ZenodoError

REPO = Path(__file__).resolve().parents[2]
TOKEN = "zen-TEST-tok-5f2b9c1e77d04a"  # a recognisable secret to search for


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[Any]:
    from mfcurate.testing.zenodo_standin import ZenodoStandIn

    with ZenodoStandIn(TOKEN, tmp_path / "zenodo-store") as s:
        yield s


@pytest.fixture(scope="module")
def package(dataset: Path, metadata: dict[str, Any],
            tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dep") / "release"
    build_package(dataset, out, metadata=metadata, include_crops=True)
    return out


@pytest.fixture
def pkg(package: Path, tmp_path: Path) -> Path:
    """A private copy (each test has its own deposit state)."""
    import shutil

    dst = tmp_path / "release"
    shutil.copytree(package, dst)
    return dst


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.messages: list[str] = []

    def client(self, url: str, **kw: Any) -> ZenodoClient:
        kw.setdefault("backoff_s", 0.01)
        return ZenodoClient(url, TOKEN, sleep=self.sleeps.append, log=self.messages.append,
                            **kw)


def _no_token_anywhere(*roots: Path, texts: list[str]) -> None:
    for t in texts:
        assert TOKEN not in t
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file():
                assert TOKEN.encode() not in p.read_bytes(), p


def _put_count(standin: Any, key: str) -> int:
    return len(standin.requests_matching("PUT", rf"/api/files/[^/]+/{key}$"))


def test_happy_path_with_500_and_429(pkg: Path, standin: Any, capsys: Any) -> None:
    rec = Recorder()
    standin.inject("status", method="PUT", path=r"/objects\.parquet$", status=500, times=1)
    standin.inject("status", method="POST", path=r"/actions/publish$", status=429,
                   retry_after=7, times=1)
    res = deposit_package(pkg, rec.client(standin.base_url), log=rec.messages.append)
    assert res.published and res.doi == f"10.5072/zenodo.{res.deposition_id}"
    dep = standin.depositions[res.deposition_id]
    assert dep["submitted"] and dep["state"] == "done"
    assert 7.0 in rec.sleeps  # Retry-After honoured
    assert _put_count(standin, "objects.parquet") == 2  # the 500, then the retry
    manifest = json.loads((pkg / "manifest.json").read_text())
    remote = {f["filename"]: f["checksum"] for f in standin.view(dep)["files"]}
    assert remote == {**{e["path"]: e["md5"] for e in manifest["files"]},
                      "manifest.json": remote["manifest.json"]}
    md = dep["metadata"]
    assert md["license"] == "cc-by-nc-sa-4.0" and md["creators"][0]["name"] == "Doe, Jane"
    assert {r["identifier"] for r in md["related_identifiers"]} >= {
        "10.1038/s41597-023-02327-4", "10.48550/arXiv.2108.11195"}
    state = json.loads((pkg / ".publish" / "state.json").read_text())
    assert state["published"] and state["doi"] == res.doi
    # published: bucket locked, metadata frozen
    r = requests.put(f"{dep_links(standin, dep)['bucket']}/x.txt", data=b"x",
                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 403
    # rerun: nothing to do
    again = deposit_package(pkg, rec.client(standin.base_url), log=rec.messages.append)
    assert again.published and again.uploaded == []
    _no_token_anywhere(pkg, texts=[*rec.messages, capsys.readouterr().out,
                                   capsys.readouterr().err])


def dep_links(standin: Any, dep: dict[str, Any]) -> dict[str, str]:
    return dict(standin.view(dep)["links"])


def test_dropped_connection_then_rerun_resumes(pkg: Path, standin: Any) -> None:
    rec = Recorder()
    # objects.parquet is uploaded after images.parquet and the small metadata files;
    # dropping it more often than the client retries interrupts the run
    standin.inject("drop", method="PUT", path=r"/objects\.parquet$", times=3, after_bytes=2048)
    with pytest.raises(ZenodoError) as err:
        deposit_package(pkg, rec.client(standin.base_url, max_retries=2))
    assert TOKEN not in str(err.value) and "upload objects.parquet" in str(err.value)
    state = json.loads((pkg / ".publish" / "state.json").read_text())
    assert not state["published"] and "images.parquet" in state["uploaded"]
    assert "objects.parquet" not in state["uploaded"]
    dep_id = state["deposition_id"]
    assert not standin.depositions[dep_id]["submitted"]
    before = {k: _put_count(standin, k) for k in ("images.parquet", "CITATION.cff")}
    assert before == {"images.parquet": 1, "CITATION.cff": 1}
    res = deposit_package(pkg, rec.client(standin.base_url))
    assert res.published and res.deposition_id == dep_id  # same draft, resumed
    assert "images.parquet" in res.skipped and "objects.parquet" in res.uploaded
    assert {k: _put_count(standin, k) for k in before} == before  # not sent again
    assert len([d for d in standin.depositions.values()]) == 1
    _no_token_anywhere(pkg, texts=rec.messages)


def test_checksum_mismatch_stops_publication(pkg: Path, standin: Any) -> None:
    rec = Recorder()
    standin.inject("corrupt", method="PUT", path=r"/images\.parquet$", times=1)
    with pytest.raises(DepositError, match=r"images\.parquet.*differs.*nothing was published"):
        deposit_package(pkg, rec.client(standin.base_url))
    assert not standin.requests_matching("POST", r"/actions/publish$")
    (dep,) = standin.depositions.values()
    assert not dep["submitted"]
    # a rerun re-uploads the bad file (remote md5 differs) and then publishes
    res = deposit_package(pkg, rec.client(standin.base_url))
    assert res.published and "images.parquet" in res.uploaded
    assert _put_count(standin, "images.parquet") == 2


def test_remote_mismatch_is_reuploaded_on_resume(pkg: Path, standin: Any) -> None:
    """A file corrupted on the server after upload is caught before publish."""
    rec = Recorder()
    client = rec.client(standin.base_url)
    deposit_package(pkg, client, publish=False)
    (dep,) = standin.depositions.values()
    f = standin.buckets[dep["bucket"]]["objects.parquet"]
    f.md5 = "0" * 32  # what a silently corrupted object would list
    state_path = pkg / ".publish" / "state.json"
    state = json.loads(state_path.read_text())
    assert not state["published"]
    # the resumed run re-uploads it (listing shows a different md5), then verifies, publishes
    res = deposit_package(pkg, client)
    assert res.published and res.uploaded == ["objects.parquet"]


def test_missing_file_stops_publication(pkg: Path, standin: Any, monkeypatch: Any) -> None:
    rec = Recorder()
    client = rec.client(standin.base_url)
    real_upload = client.upload

    def lossy_upload(bucket: str, key: str, path: Path, progress: Any = None) -> Any:
        out = real_upload(bucket, key, path, progress)
        if key == "DATASHEET.md":  # the server loses it after confirming
            (dep,) = standin.depositions.values()
            del standin.buckets[dep["bucket"]][key]
        return out

    monkeypatch.setattr(client, "upload", lossy_upload)
    with pytest.raises(DepositError, match=r"DATASHEET\.md: missing on the server"):
        deposit_package(pkg, client)
    assert not standin.requests_matching("POST", r"/actions/publish$")


def test_draft_only_then_new_version(pkg: Path, standin: Any, dataset: Path,
                                     metadata: dict[str, Any], tmp_path: Path) -> None:
    rec = Recorder()
    draft = deposit_package(pkg, rec.client(standin.base_url), publish=False)
    assert not draft.published and not standin.depositions[draft.deposition_id]["submitted"]
    first = deposit_package(pkg, rec.client(standin.base_url))
    assert first.published and first.deposition_id == draft.deposition_id
    # version 2: a different package (only one source) as a new version of the record
    v2 = tmp_path / "v2"
    build_package(dataset, v2, version="2.0.0", metadata=metadata, filters={"sources": ["midog++"]})
    standin.newversion_body = "original"  # legacy docs: the body is the original record
    res = deposit_package(v2, rec.client(standin.base_url),
                          new_version_of=str(first.deposition_id))
    assert res.published and res.deposition_id != first.deposition_id
    new = standin.depositions[res.deposition_id]
    old = standin.depositions[first.deposition_id]
    assert new["conceptrecid"] == old["conceptrecid"]
    assert new["metadata"]["version"] == "2.0.0" and new["metadata"]["license"] == "cc0-1.0"
    names = {f["filename"] for f in standin.view(new)["files"]}
    assert "crops-000.tar" not in names  # carried-over file of v1 removed
    # the old version is untouched
    assert "crops-000.tar" in {f["filename"] for f in standin.view(old)["files"]}
    # newversion on a non-latest version is refused with Zenodo's message
    with pytest.raises(ZenodoError, match="not the latest version"):
        rec.client(standin.base_url).new_version(first.deposition_id)


def test_error_bodies_both_shapes(standin: Any) -> None:
    client = ZenodoClient(standin.base_url, TOKEN, sleep=lambda s: None)
    dep = client.create_deposition()
    assert dep["state"] == "unsubmitted" and dep["metadata"]["prereserve_doi"]["doi"]
    with pytest.raises(ZenodoError) as e1:  # legacy shape: errors[{field, message}]
        client.set_metadata(dep, {"title": "t", "access_right": "sideways",
                                  "creators": [{"affiliation": "x"}]})
    msg = str(e1.value)
    assert "HTTP 400" in msg and "metadata.access_right: Invalid access right" in msg
    assert "metadata.creators.0.name: Missing data" in msg
    with pytest.raises(ZenodoError) as e2:  # RDM shape: errors[{field, messages[]}]
        client.publish(dep)
    msg = str(e2.value)
    assert "A validation error occurred" in msg and "files.enabled: Missing uploaded files" in msg
    assert "metadata.title: Missing data for required field." in msg
    bad = ZenodoClient(standin.base_url, "wrong-token-0123456789", sleep=lambda s: None)
    with pytest.raises(ZenodoError, match="HTTP 401"):
        bad.create_deposition()
    r = requests.post(f"{standin.base_url}/deposit/depositions", data=b"{}",
                      headers={"Authorization": f"Bearer {TOKEN}",
                               "Content-Type": "text/plain"}, timeout=5)
    assert r.status_code == 415 and r.json()["status"] == 415


def test_retries_give_up_with_clear_error(standin: Any) -> None:
    rec = Recorder()
    standin.inject("status", method="POST", path=r"/api/deposit/depositions$", status=503,
                   times=10)
    with pytest.raises(ZenodoError, match=r"create deposition: HTTP 503 after 3 attempt"):
        rec.client(standin.base_url, max_retries=2).create_deposition()
    assert len(rec.sleeps) == 2 and rec.sleeps[1] > rec.sleeps[0] * 0.9


def test_chunked_upload_and_url_decoded_keys(standin: Any, tmp_path: Path) -> None:
    client = ZenodoClient(standin.base_url, TOKEN, sleep=lambda s: None)
    dep = client.create_deposition()

    def gen() -> Any:
        yield b"a" * 70_000
        yield b"b" * 5

    r = requests.put(f"{dep['links']['bucket']}/my%20file.bin", data=gen(),
                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 201 and r.json()["size"] == 70_005
    import hashlib

    assert r.json()["checksum"] == "md5:" + hashlib.md5(b"a" * 70_000 + b"b" * 5).hexdigest()
    assert set(client.list_files(dep)) == {"my file.bin"}


def test_metadata_required_before_network(pkg: Path, standin: Any) -> None:
    (pkg / ".publish" / "deposit.json").write_text(json.dumps({"title": "x"}))
    with pytest.raises(DepositError, match="creators is missing"):
        deposit_package(pkg, ZenodoClient(standin.base_url, TOKEN))
    assert standin.log == []


def test_cli_publish_against_standin(pkg: Path, standin: Any, dataset: Path,
                                     metadata: dict[str, Any], tmp_path: Path) -> None:
    md = tmp_path / "zenodo.toml"
    md.write_text('title = "CLI release"\ndescription = "From the CLI."\n'
                  '[[creators]]\nname = "Roe, Richard"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO), "ZENODO_TOKEN": TOKEN}
    out = tmp_path / "cli-release"
    cmd = [sys.executable, "-m", "mfcurate", "publish", str(dataset), "--url",
           standin.base_url, "--metadata", str(md), "--out", str(out), "--version", "3.1.0"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "published" in p.stdout and "10.5072/zenodo." in p.stdout
    (dep,) = standin.depositions.values()
    assert dep["submitted"] and dep["metadata"]["title"] == "CLI release"
    # usage errors: no target, and no token
    p2 = subprocess.run(cmd[:5], capture_output=True, text=True, env=env, timeout=60)
    assert p2.returncode == 2 and "--dry-run" in p2.stderr
    env_no = {k: v for k, v in env.items() if k != "ZENODO_TOKEN"}
    p3 = subprocess.run(cmd, capture_output=True, text=True, env=env_no, timeout=60)
    assert p3.returncode == 2 and "ZENODO_TOKEN" in p3.stderr
    _no_token_anywhere(out, texts=[p.stdout, p.stderr, p2.stdout, p2.stderr])


def test_timeouts_are_retried(pkg: Path, standin: Any) -> None:
    """A stalled upload and a stalled publish: the client times out, retries, publishes once."""
    rec = Recorder()
    standin.inject("stall", method="PUT", path=r"/images\.parquet$", delay=0.6)
    standin.inject("stall", method="POST", path=r"/actions/publish$", delay=0.6)
    client = rec.client(standin.base_url, timeout=(2.0, 0.25))
    res = deposit_package(pkg, client)
    assert res.published
    assert any("ReadTimeout" in m for m in rec.messages)
    assert _put_count(standin, "images.parquet") >= 1
    import time

    time.sleep(0.8)  # let the stalled requests finish on the server
    dep = standin.depositions[res.deposition_id]
    assert dep["submitted"] and len(standin.depositions) == 1
    remote = {f["filename"]: f["checksum"] for f in standin.view(dep)["files"]}
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert all(remote[e["path"]] == e["md5"] for e in manifest["files"])


def test_client_repr_hides_token(standin: Any) -> None:
    client = ZenodoClient(standin.base_url, TOKEN)
    assert TOKEN not in repr(client) and "***" in repr(client)
    assert client.redact(f"x {TOKEN} y") == "x *** y"


def test_vanished_draft_needs_restart(pkg: Path, standin: Any) -> None:
    rec = Recorder()
    first = deposit_package(pkg, rec.client(standin.base_url), publish=False)
    del standin.depositions[first.deposition_id]  # discarded in the web interface
    with pytest.raises(DepositError, match=r"no longer exists.*--restart"):
        deposit_package(pkg, rec.client(standin.base_url))
    res = deposit_package(pkg, rec.client(standin.base_url), restart=True)
    assert res.published and res.deposition_id != first.deposition_id

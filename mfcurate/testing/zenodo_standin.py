"""A local stand-in of Zenodo's legacy deposit API, for tests and benchmarks.

It is stateful and strict where a client can go wrong: JSON error bodies in both shapes
(``message`` + ``errors[{field, message}]`` for metadata validation, RDM-style
``errors[{field, messages[]}]`` for publish validation), 401 without the token, 415 without a
JSON content type, 201/202/204 where Zenodo answers them, md5 checksums on bucket ``PUT``
(streamed, ``Content-Length`` or chunked), buckets locked after publish (403), one pending
``newversion`` draft per concept reachable through ``links.latest_draft``.  Faults can be
injected: a status (500, 429 with ``Retry-After``), a connection dropped mid-upload, and a
stored file whose bytes differ from what was sent (checksum mismatch).

Standard library only (``http.server``); it binds 127.0.0.1 only, stores uploads in its own
folder under hashed names (keys never become paths), and stops after ``max_requests``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_UPLOAD_TYPES = {"publication", "poster", "presentation", "dataset", "image", "video",
                 "software", "lesson", "physicalobject", "other"}
_ACCESS = {"open", "embargoed", "restricted", "closed"}
_CHUNK = 1 << 16


@dataclass
class Fault:
    """An injected fault.

    Attributes:
        kind: ``"status"`` (answer ``status``), ``"drop"`` (read ``after_bytes`` of the body,
            then close the connection without an answer), ``"corrupt"`` (store the upload
            with one byte changed, so the checksum differs) or ``"stall"`` (wait ``delay``
            seconds, then handle the request normally: the client times out although the
            server goes on to do the work).
        method: HTTP method it applies to.
        path: regex searched in the request path.
        times: how many matching requests it hits.
        status: status for ``kind="status"``.
        retry_after: ``Retry-After`` seconds sent with a 429/503 (None: no header).
        after_bytes: body bytes read before a drop.
    """

    kind: str
    method: str = "PUT"
    path: str = r"^/api/files/"
    times: int = 1
    status: int = 500
    retry_after: float | None = None
    after_bytes: int = 1024
    delay: float = 1.0


class _HTTPError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _err(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> _HTTPError:
    body: dict[str, Any] = {"status": status, "message": message}
    if errors:
        body["errors"] = errors
    return _HTTPError(status, body)


@dataclass
class _File:
    key: str
    path: Path
    size: int
    md5: str
    file_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    version_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class ZenodoStandIn:
    """The server.  Use as a context manager; ``base_url`` is the API root (``.../api``).

    Args:
        token: the access token it accepts.
        storage: folder for uploaded bytes.
        max_files: files per deposition (Zenodo: 100).
        max_bytes: bytes per deposition (Zenodo: 50 GB; scale down in tests).
        newversion_body: ``"draft"`` (RDM behaviour) or ``"original"`` (legacy docs).
        max_requests: the server stops answering after this many requests.
    """

    def __init__(self, token: str, storage: Path | str, *, max_files: int = 100,
                 max_bytes: int = 50 * 10**9, newversion_body: str = "draft",
                 max_requests: int = 100_000) -> None:
        self.token = token
        self.storage = Path(storage)
        self.storage.mkdir(parents=True, exist_ok=True)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.newversion_body = newversion_body
        self.max_requests = max_requests
        self.depositions: dict[int, dict[str, Any]] = {}
        self.buckets: dict[str, dict[str, _File]] = {}
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []
        self.lock = threading.RLock()
        self._next_id = 1000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        """Start serving on 127.0.0.1 (a free port); return the API root URL."""
        standin = self

        class Handler(_Handler):
            server_state = standin

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}/api"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop the server and remove nothing (the storage folder belongs to the caller)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ZenodoStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, kind: str, **kw: Any) -> Fault:
        """Add a fault (see :class:`Fault`)."""
        f = Fault(kind, **kw)
        with self.lock:
            self.faults.append(f)
        return f

    def requests_matching(self, method: str, pattern: str) -> list[tuple[str, str, int]]:
        """Logged ``(method, path, status)`` of requests whose path matches ``pattern``."""
        return [r for r in self.log if r[0] == method and re.search(pattern, r[1])]

    # ------------------------------------------------------------------ model
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _links(self, d: dict[str, Any]) -> dict[str, str]:
        b = self.base_url
        i = d["id"]
        links = {"self": f"{b}/deposit/depositions/{i}", "html": f"{b[:-4]}/deposit/{i}",
                 "bucket": f"{b}/files/{d['bucket']}",
                 "files": f"{b}/deposit/depositions/{i}/files",
                 "publish": f"{b}/deposit/depositions/{i}/actions/publish",
                 "edit": f"{b}/deposit/depositions/{i}/actions/edit",
                 "discard": f"{b}/deposit/depositions/{i}/actions/discard",
                 "newversion": f"{b}/deposit/depositions/{i}/actions/newversion"}
        draft = self._pending_draft(d["conceptrecid"])
        if draft is not None:
            links["latest_draft"] = f"{b}/deposit/depositions/{draft['id']}"
            links["latest_draft_html"] = f"{b[:-4]}/deposit/{draft['id']}"
        if d["submitted"]:
            links["record"] = f"{b}/records/{i}"
            links["record_html"] = f"{b[:-4]}/records/{i}"
        return links

    def _pending_draft(self, concept: str) -> dict[str, Any] | None:
        for d in self.depositions.values():
            if d["conceptrecid"] == concept and not d["submitted"]:
                return d
        return None

    def _file_entry(self, f: _File, dep_id: int) -> dict[str, Any]:
        return {"id": f.file_id, "filename": f.key, "filesize": f.size, "checksum": f.md5,
                "links": {"self": f"{self.base_url}/deposit/depositions/{dep_id}/files/"
                                  f"{f.file_id}",
                          "download": f"{self.base_url}/records/{dep_id}/files/{f.key}/content"}}

    def view(self, d: dict[str, Any]) -> dict[str, Any]:
        """The JSON representation of a deposition."""
        files = [self._file_entry(f, d["id"]) for f in self.buckets[d["bucket"]].values()]
        out = {k: v for k, v in d.items() if k != "bucket"}
        out["files"] = files
        out["title"] = d["metadata"].get("title", "")
        out["links"] = self._links(d)
        return json.loads(json.dumps(out))

    def create(self, metadata: dict[str, Any] | None = None, concept: str | None = None
               ) -> dict[str, Any]:
        """Create a draft deposition (also used by newversion)."""
        i = self._new_id()
        bucket = str(uuid.uuid4())
        self.buckets[bucket] = {}
        md = dict(metadata or {})
        md["prereserve_doi"] = {"doi": f"10.5072/zenodo.{i}", "recid": i}
        now = dt.datetime.now(dt.UTC).isoformat()
        d = {"id": i, "record_id": i, "conceptrecid": concept or str(self._new_id()),
             "state": "unsubmitted", "submitted": False, "created": now, "modified": now,
             "owner": 1, "metadata": md, "bucket": bucket}
        self.depositions[i] = d
        return d

    def get(self, dep_id: str) -> dict[str, Any]:
        """The deposition or a 404."""
        d = self.depositions.get(int(dep_id))
        if d is None:
            raise _err(404, "PID does not exist.")
        return d


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Dropped connections are expected (fault injection): stay quiet."""


def _validate_metadata(md: Any) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    if not isinstance(md, dict):
        return [{"field": "metadata", "message": "Not a valid object."}]
    if "upload_type" in md and md["upload_type"] not in _UPLOAD_TYPES:
        errors.append({"field": "metadata.upload_type", "message": "Invalid upload type."})
    if md.get("access_right", "open") not in _ACCESS:
        errors.append({"field": "metadata.access_right", "message": "Invalid access right."})
    for n, c in enumerate(md.get("creators", []) or []):
        if not isinstance(c, dict) or not str(c.get("name", "")).strip():
            errors.append({"field": f"metadata.creators.{n}.name",
                           "message": "Missing data for required field."})
    if md.get("access_right", "open") in ("open", "embargoed") and not md.get("license"):
        errors.append({"field": "metadata.license", "message": "License is required."})
    return errors


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: ZenodoStandIn
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr logging."""

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None
              ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-RateLimit-Limit", "100")
        self.send_header("X-RateLimit-Remaining", "99")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)
        st = self.server_state
        with st.lock:
            st.log.append((self.command, urlsplit(self.path).path, status))

    def _iter_body(self) -> Any:
        """Yield the request body in chunks (Content-Length or chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    chunk = self.rfile.read(min(left, _CHUNK))
                    if not chunk:
                        raise ConnectionError("client went away")
                    left -= len(chunk)
                    yield chunk
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                chunk = self.rfile.read(min(left, _CHUNK))
                if not chunk:
                    raise ConnectionError("client went away")
                left -= len(chunk)
                yield chunk

    def _json_body(self) -> Any:
        ctype = self.headers.get("Content-Type", "")
        raw = b"".join(self._iter_body())
        if len(raw) > 10 * 2**20:
            raise _err(413, "Request entity too large.")
        if not raw:
            return {}
        if not ctype.startswith("application/json"):
            raise _err(415, "Unsupported media type: use application/json.")
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise _err(400, "Could not parse JSON body.") from None

    def _fault(self) -> Fault | None:
        st = self.server_state
        path = urlsplit(self.path).path
        with st.lock:
            for f in st.faults:
                if f.times > 0 and f.method == self.command and re.search(f.path, path):
                    f.times -= 1
                    return f
        return None

    def _authorised(self) -> bool:
        st = self.server_state
        auth = self.headers.get("Authorization", "")
        q = parse_qs(urlsplit(self.path).query).get("access_token", [""])[0]
        return auth == f"Bearer {st.token}" or q == st.token

    def _dispatch(self) -> None:
        st = self.server_state
        with st.lock:
            over = len(st.log) >= st.max_requests
        if over:
            self.close_connection = True
            return
        try:
            fault = self._fault()
            if fault is not None and fault.kind == "status":
                for _ in self._iter_body():
                    pass
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                self._send(fault.status, {"status": fault.status,
                                          "message": "Injected fault." if fault.status != 429
                                          else "Too many requests."}, headers)
                return
            if fault is not None and fault.kind == "drop":
                got = 0
                for chunk in self._iter_body():
                    got += len(chunk)
                    if got >= fault.after_bytes:
                        break
                with st.lock:
                    st.log.append((self.command, urlsplit(self.path).path, 0))
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault is not None and fault.kind == "stall":
                time.sleep(fault.delay)
            if not self._authorised():
                raise _err(401, "The server could not verify that you are authorized to "
                                "access the URL requested.")
            self._route(fault)
        except _HTTPError as e:
            self._send(e.status, e.body)
        except (ConnectionError, OSError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    # ------------------------------------------------------------------ routes
    def _route(self, fault: Fault | None) -> None:
        st = self.server_state
        path = unquote(urlsplit(self.path).path)
        m = self.command, path
        with st.lock:
            if m == ("POST", "/api/deposit/depositions"):
                body = self._json_body()
                md = body.get("metadata", {}) if isinstance(body, dict) else {}
                errors = _validate_metadata(md) if md else []
                if errors:
                    raise _err(400, "Validation error.", errors)
                self._send(201, st.view(st.create(md)))
                return
            if m == ("GET", "/api/deposit/depositions"):
                self._send(200, [st.view(d) for d in st.depositions.values()])
                return
        r = re.fullmatch(r"/api/deposit/depositions/(\d+)(/.*)?", path)
        if r:
            self._deposition(r.group(1), r.group(2) or "")
            return
        r = re.fullmatch(r"/api/files/([0-9a-f-]{36})/(.+)", path)
        if r:
            self._bucket(r.group(1), r.group(2), fault)
            return
        r = re.fullmatch(r"/api/records/(\d+)", path)
        if r and self.command == "GET":
            with st.lock:
                d = st.get(r.group(1))
                if not d["submitted"]:
                    raise _err(404, "Record not found.")
                self._send(200, st.view(d))
            return
        raise _err(404, "The requested URL was not found on the server.")

    def _deposition(self, dep_id: str, rest: str) -> None:
        st = self.server_state
        cmd = self.command
        with st.lock:
            d = st.get(dep_id)
            if rest == "" and cmd == "GET":
                self._send(200, st.view(d))
            elif rest == "" and cmd == "PUT":
                body = self._json_body()
                if d["submitted"] and d["state"] != "inprogress":
                    raise _err(403, "Published deposition cannot be modified; use the edit "
                                    "action first.")
                md = body.get("metadata") if isinstance(body, dict) else None
                if md is None:
                    raise _err(400, "Validation error.",
                               [{"field": "metadata", "message": "Missing data for required "
                                                                 "field."}])
                errors = _validate_metadata(md)
                if errors:
                    raise _err(400, "Validation error.", errors)
                md = dict(md)
                md["prereserve_doi"] = d["metadata"]["prereserve_doi"]
                d["metadata"] = md
                d["modified"] = dt.datetime.now(dt.UTC).isoformat()
                self._send(200, st.view(d))
            elif rest == "" and cmd == "DELETE":
                if d["submitted"]:
                    raise _err(403, "Published deposition cannot be deleted.")
                del st.depositions[d["id"]]
                self._send(204)
            elif rest == "/files" and cmd == "GET":
                self._send(200, st.view(d)["files"])
            elif rest.startswith("/files/") and cmd == "DELETE":
                if d["submitted"]:
                    raise _err(403, "Files of a published deposition cannot be deleted.")
                fid = rest[len("/files/"):]
                bucket = st.buckets[d["bucket"]]
                for key, f in list(bucket.items()):
                    if f.file_id == fid:
                        f.path.unlink(missing_ok=True)
                        del bucket[key]
                        self._send(204)
                        return
                raise _err(404, "File does not exist.")
            elif rest.startswith("/actions/") and cmd == "POST":
                self._action(d, rest[len("/actions/"):])
            else:
                raise _err(405, "Method not allowed.")

    def _action(self, d: dict[str, Any], action: str) -> None:
        st = self.server_state
        for _ in self._iter_body():
            pass
        if action == "publish":
            if d["submitted"] and d["state"] == "done":
                raise _err(400, "Deposition is already published.")
            md = d["metadata"]
            errors = []
            for fld in ("title", "upload_type", "description", "creators"):
                if not md.get(fld):
                    errors.append({"field": f"metadata.{fld}",
                                   "messages": ["Missing data for required field."]})
            if not st.buckets[d["bucket"]]:
                errors.append({"field": "files.enabled",
                               "messages": ["Missing uploaded files. To disable files for "
                                            "this record please mark it as metadata-only."]})
            if errors:
                raise _err(400, "A validation error occurred.", errors)
            d["submitted"] = True
            d["state"] = "done"
            d["doi"] = md["prereserve_doi"]["doi"]
            d["doi_url"] = f"https://doi.org/{d['doi']}"
            d["conceptdoi"] = f"10.5072/zenodo.{d['conceptrecid']}"
            self._send(202, st.view(d))
        elif action == "edit":
            if not d["submitted"]:
                raise _err(400, "Deposition is not published.")
            d["state"] = "inprogress"
            self._send(201, st.view(d))
        elif action == "discard":
            if d["state"] == "inprogress":
                d["state"] = "done"
            self._send(201, st.view(d))
        elif action == "newversion":
            if not d["submitted"]:
                raise _err(400, "Only a published deposition can get a new version.")
            concept = d["conceptrecid"]
            latest = max(x["id"] for x in st.depositions.values()
                         if x["conceptrecid"] == concept and x["submitted"])
            if d["id"] != latest:
                raise _err(400, "The deposition is not the latest version of its concept.")
            draft = st._pending_draft(concept)
            if draft is None:
                md = {k: v for k, v in d["metadata"].items() if k != "prereserve_doi"}
                draft = st.create(md, concept=concept)
                for key, f in st.buckets[d["bucket"]].items():
                    dest = st.storage / f"{uuid.uuid4().hex}.bin"
                    shutil.copyfile(f.path, dest)
                    st.buckets[draft["bucket"]][key] = _File(key, dest, f.size, f.md5)
            self._send(201, st.view(draft if st.newversion_body == "draft" else d))
        else:
            raise _err(404, f"Unknown action {action!r}.")

    def _bucket(self, bucket_id: str, key: str, fault: Fault | None) -> None:
        st = self.server_state
        with st.lock:
            bucket = st.buckets.get(bucket_id)
            owner = next((d for d in st.depositions.values() if d["bucket"] == bucket_id), None)
        if bucket is None or owner is None:
            raise _err(404, "Bucket does not exist.")
        if self.command == "GET":
            f = bucket.get(key)
            if f is None:
                raise _err(404, "Object does not exist.")
            self._send(200, {"key": f.key, "size": f.size, "checksum": f"md5:{f.md5}"})
            return
        if self.command == "DELETE":
            with st.lock:
                if owner["submitted"]:
                    raise _err(403, "Bucket is locked.")
                f = bucket.pop(key, None)
            if f is None:
                raise _err(404, "Object does not exist.")
            f.path.unlink(missing_ok=True)
            self._send(204)
            return
        if self.command != "PUT":
            raise _err(405, "Method not allowed.")
        if owner["submitted"]:
            for _ in self._iter_body():
                pass
            raise _err(403, "Bucket is locked: the deposition is published.")
        if key not in bucket and len(bucket) >= st.max_files:
            for _ in self._iter_body():
                pass
            raise _err(400, f"Too many files: at most {st.max_files} per record.")
        dest = st.storage / f"{uuid.uuid4().hex}.bin"
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        first = True
        try:
            with dest.open("wb") as out:
                for chunk in self._iter_body():
                    if first and fault is not None and fault.kind == "corrupt":
                        chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                    first = False
                    md5.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        with st.lock:
            used = sum(f.size for k, f in bucket.items() if k != key)
            if used + size > st.max_bytes:
                dest.unlink()
                raise _err(400, "Quota exceeded for this record.")
            old = bucket.get(key)
            if old is not None:
                old.path.unlink(missing_ok=True)
            f = _File(key, dest, size, md5.hexdigest())
            bucket[key] = f
        self._send(201, {
            "key": key, "mimetype": "application/octet-stream", "checksum": f"md5:{f.md5}",
            "version_id": f.version_id, "size": size, "is_head": True, "delete_marker": False,
            "created": dt.datetime.now(dt.UTC).isoformat(),
            "updated": dt.datetime.now(dt.UTC).isoformat(),
            "links": {"self": f"{st.base_url}/files/{bucket_id}/{key}",
                      "version": f"{st.base_url}/files/{bucket_id}/{key}?versionId="
                                 f"{f.version_id}"}})


def serve(token: str, storage: Path, ready: Callable[[str], None] | None = None) -> None:
    """Run a stand-in in the foreground until interrupted (benchmarks, manual tries)."""
    with ZenodoStandIn(token, storage) as s:
        if ready is not None:
            ready(s.base_url)
        while True:
            time.sleep(3600)


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys
    import tempfile

    def _ready(url: str) -> None:
        sys.stdout.write(url + "\n")
        sys.stdout.flush()

    serve(sys.argv[1] if len(sys.argv) > 1 else "standin-token",
          Path(tempfile.mkdtemp(prefix="zenodo-standin-")), _ready)

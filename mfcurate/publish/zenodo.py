"""A small ``requests`` client for Zenodo's legacy deposit API.

Rules it follows (see docs/publish.md): the token travels only in the ``Authorization``
header and is scrubbed from every message it raises; 429, 5xx, timeouts and dropped
connections are retried with exponential back-off and jitter, honouring ``Retry-After`` and
``X-RateLimit-Reset``; uploads stream from disk (the md5 is computed while streaming and
checked against the server's answer); ``publish`` is never retried blindly (after an
ambiguous failure the deposition is read back to see whether it was submitted); URLs come
from the ``links`` of responses.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import requests

from mfcurate.errors import MfcurateError

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
SANDBOX_URL = "https://sandbox.zenodo.org/api"
ZENODO_URL = "https://zenodo.org/api"


class ZenodoError(MfcurateError):
    """Zenodo answered with an error (or could not be reached).

    Attributes:
        status: HTTP status (0 when no answer came).
        detail: the server's message and field errors, one line.
    """

    def __init__(self, message: str, status: int = 0, detail: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class ChecksumMismatchError(ZenodoError):
    """A file's remote md5 differs from the local one."""


def error_detail(resp: requests.Response) -> str:
    """One line from an error body: ``message`` plus field errors (``message``/``messages``)."""
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip().replace("\n", " ")
        return text[:300] or resp.reason or ""
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [str(body.get("message") or body.get("error") or "").strip()]
    for e in body.get("errors") or []:
        if not isinstance(e, dict):
            parts.append(str(e))
            continue
        msgs = e.get("messages") or ([e["message"]] if e.get("message") else [])
        field = e.get("field")
        parts.append(f"{field}: {'; '.join(str(m) for m in msgs)}" if field
                     else "; ".join(str(m) for m in msgs))
    if body.get("error_id"):
        parts.append(f"error id {body['error_id']}")
    return " | ".join(p for p in parts if p)


class _StreamingFile:
    """A file body for ``requests`` that hashes (md5) and reports progress while it streams."""

    def __init__(self, path: Path, progress: Callable[[int], Any] | None) -> None:
        self._f = path.open("rb")
        self._size = path.stat().st_size
        self._progress = progress
        self.md5 = hashlib.md5(usedforsecurity=False)

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        # http.client asks for 8-16 KiB blocks; sending 1 MiB per call halves the overhead
        block = self._f.read(max(n, 1 << 20) if n and n > 0 else 1 << 20)
        if block:
            self.md5.update(block)
            if self._progress is not None:
                self._progress(len(block))
        return block

    def close(self) -> None:
        self._f.close()


#: Shortest token accepted: a shorter "secret" would be scrubbed out of every message.
MIN_TOKEN_CHARS = 16


class ZenodoClient:
    """Talks to one Zenodo API root (``https://zenodo.org/api``, the sandbox or a stand-in).

    Args:
        base_url: API root.
        token: personal access token (scopes deposit:write, deposit:actions).
        timeout: (connect, read) seconds per request.
        max_retries: retries per call on 429/5xx/timeouts/dropped connections.
        backoff_s: first back-off; doubles per retry, with jitter.
        max_backoff_s: cap on one wait (a longer Retry-After is honoured up to 15 min).
        sleep: the sleep function (tests record the waits).
        log: optional callback for retry messages.
    """

    def __init__(self, base_url: str, token: str, *, timeout: tuple[float, float] = (10, 300),
                 max_retries: int = 6, backoff_s: float = 1.0, max_backoff_s: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] | None = None) -> None:
        token = token.strip()
        if not token:
            raise ZenodoError("no Zenodo token: set ZENODO_TOKEN or pass --token-file")
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise ZenodoError(f"the Zenodo token has {len(token)} characters or contains "
                              f"spaces; a personal access token is one word of at least "
                              f"{MIN_TOKEN_CHARS} (Zenodo's have 60): check ZENODO_TOKEN or "
                              "--token-file")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.log = log or (lambda _m: None)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["User-Agent"] = "mfcurate-publish"

    def __repr__(self) -> str:
        return f"ZenodoClient({self.base_url!r}, token=***)"

    def redact(self, text: str) -> str:
        """``text`` with the token replaced by ``***``."""
        return text.replace(self._token, "***") if self._token else text

    # ------------------------------------------------------------------ plumbing
    def _wait(self, attempt: int, resp: requests.Response | None) -> float:
        delay = min(self.backoff_s * 2**attempt, self.max_backoff_s)
        delay *= 0.5 + random.random() * 0.5
        if resp is not None:
            ra = resp.headers.get("Retry-After")
            reset = resp.headers.get("X-RateLimit-Reset")
            if ra:
                try:
                    delay = float(ra)
                except ValueError:
                    when = email.utils.parsedate_to_datetime(ra)
                    delay = when.timestamp() - time.time()
            elif reset and resp.status_code == 429:
                try:
                    delay = float(reset) - time.time()
                except ValueError:
                    pass
        return float(min(max(delay, 0.0), 900.0))

    def request(self, method: str, url: str, *, expected: Iterable[int] = (200,),
                json: Any = None, body_factory: Callable[[], Any] | None = None,
                headers: Mapping[str, str] | None = None, retry: bool = True,
                what: str = "") -> requests.Response:
        """One API call with retries; raises :class:`ZenodoError` on failure.

        Args:
            method: HTTP method.
            url: absolute URL (from ``links``) or a path under the API root.
            expected: success statuses.
            json: JSON body.
            body_factory: returns a fresh streaming body per attempt (uploads).
            headers: extra headers.
            retry: retry on 429/5xx/timeouts/connection errors.
            what: a short description for messages ("upload objects.parquet").
        """
        if not url.startswith("http"):
            url = f"{self.base_url}/{url.lstrip('/')}"
        ok = set(expected)
        label = what or f"{method} {url}"
        attempt = 0
        while True:
            body = body_factory() if body_factory is not None else None
            resp: requests.Response | None = None
            failure = ""
            try:
                resp = self.session.request(method, url, json=json, data=body,
                                            headers=dict(headers or {}), timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                failure = f"{type(exc).__name__}"
            finally:
                if body is not None and hasattr(body, "close"):
                    body.close()
            if resp is not None and resp.status_code in ok:
                return resp
            if resp is not None and resp.status_code not in RETRY_STATUS:
                detail = self.redact(error_detail(resp))
                raise ZenodoError(f"{label}: HTTP {resp.status_code}: {detail}",
                                  resp.status_code, detail)
            if resp is not None:
                failure = f"HTTP {resp.status_code}"
            if not retry or attempt >= self.max_retries:
                detail = self.redact(error_detail(resp)) if resp is not None else ""
                hinted = resp is not None and ("Retry-After" in resp.headers or
                                               resp.status_code == 429)
                raise ZenodoError(self.redact(f"{label}: {failure} after {attempt + 1} "
                                              f"attempt(s){': ' + detail if detail else ''}"),
                                  resp.status_code if resp is not None else 0, detail,
                                  retry_after=self._wait(attempt, resp) if hinted else None)
            delay = self._wait(attempt, resp)
            self.log(f"{label}: {failure}; retrying in {delay:.1f} s "
                     f"({attempt + 1}/{self.max_retries})")
            self.sleep(delay)
            attempt += 1

    # ------------------------------------------------------------------ API
    def create_deposition(self) -> dict[str, Any]:
        """``POST /deposit/depositions`` -> the new draft (201)."""
        return dict(self.request("POST", "deposit/depositions", json={}, expected=(201,),
                                 what="create deposition").json())

    def get_deposition(self, url_or_id: str | int) -> dict[str, Any]:
        """A deposition by its ``links.self`` URL or id."""
        url = url_or_id if isinstance(url_or_id, str) and url_or_id.startswith("http") \
            else f"deposit/depositions/{url_or_id}"
        return dict(self.request("GET", str(url), what="read deposition").json())

    def list_files(self, dep: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Remote files of a deposition: filename -> {id, filesize, checksum (md5 hex)}."""
        resp = self.request("GET", dep["links"]["files"], what="list deposition files")
        out = {}
        for f in resp.json():
            cs = str(f.get("checksum", ""))
            out[str(f["filename"])] = {"id": f["id"], "filesize": f.get("filesize"),
                                       "checksum": cs.removeprefix("md5:")}
        return out

    def delete_file(self, dep: Mapping[str, Any], file_id: str) -> None:
        """Delete a file of a draft (e.g. one carried over into a new version)."""
        self.request("DELETE", f"{dep['links']['files']}/{file_id}", expected=(204,),
                     what="delete file")

    def upload(self, bucket_url: str, key: str, path: Path,
               progress: Callable[[int], Any] | None = None) -> dict[str, Any]:
        """Stream ``path`` to ``bucket_url/key`` (``PUT``); verify the returned md5.

        Returns:
            The bucket object (``key``, ``size``, ``checksum``...), with ``local_md5``.

        Raises:
            ChecksumMismatchError: the server's md5 differs from the bytes sent.
        """
        from urllib.parse import quote

        holder: dict[str, _StreamingFile] = {}

        def body() -> _StreamingFile:
            holder["f"] = _StreamingFile(path, progress)
            return holder["f"]

        resp = self.request("PUT", f"{bucket_url}/{quote(key)}", body_factory=body,
                            expected=(200, 201),
                            headers={"Content-Type": "application/octet-stream"},
                            what=f"upload {key}")
        obj = dict(resp.json())
        local = holder["f"].md5.hexdigest()
        remote = str(obj.get("checksum", "")).removeprefix("md5:")
        if remote != local:
            raise ChecksumMismatchError(f"upload {key}: server checksum md5:{remote} differs "
                                        f"from the local md5:{local}", resp.status_code)
        obj["local_md5"] = local
        return obj

    def set_metadata(self, dep: Mapping[str, Any], metadata: Mapping[str, Any]
                     ) -> dict[str, Any]:
        """``PUT`` the deposition's metadata (full replace)."""
        return dict(self.request("PUT", dep["links"]["self"], json={"metadata": metadata},
                                 what="set metadata").json())

    def publish(self, dep: Mapping[str, Any]) -> dict[str, Any]:
        """Publish a draft (202).  After an ambiguous failure, read the deposition back."""
        attempt = 0
        while True:
            try:
                return dict(self.request("POST", dep["links"]["publish"], expected=(202,),
                                         retry=False, what="publish").json())
            except ZenodoError as exc:
                if attempt and exc.status in (400, 409):
                    # an earlier, unanswered publish may have gone through meanwhile
                    current = self.get_deposition(dep["links"]["self"])
                    if current.get("submitted"):
                        return current
                if exc.status not in (0, *RETRY_STATUS) or attempt >= self.max_retries:
                    raise
                current = self.get_deposition(dep["links"]["self"])
                if current.get("submitted"):
                    return current
                delay = exc.retry_after if exc.retry_after is not None else \
                    self._wait(attempt, None)
                self.log(f"{exc}; not submitted, retrying in {delay:.1f} s")
                self.sleep(delay)
                attempt += 1

    def new_version(self, record_id: str | int) -> dict[str, Any]:
        """``newversion`` on a published deposition; returns the new draft.

        The response may be the original or the draft; ``links.latest_draft`` is followed.
        """
        resp = self.request("POST", f"deposit/depositions/{record_id}/actions/newversion",
                            expected=(201,), what=f"new version of {record_id}").json()
        latest = resp.get("links", {}).get("latest_draft")
        if not latest:
            raise ZenodoError(f"new version of {record_id}: the answer has no "
                              "links.latest_draft")
        return self.get_deposition(str(latest))

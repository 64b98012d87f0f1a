"""Upload a built package to Zenodo and publish it, resumably.

Flow: verify the local files against ``manifest.json`` -> create the draft (or a new version
of a record, following ``links.latest_draft``) -> stream each file to the bucket, skipping
files the draft already holds with the same md5 -> set the metadata -> list the remote files
and compare every md5 (missing, mismatched or extra files stop here) -> publish (unless
``publish=False``).  Every step is recorded in ``.publish/state.json`` so that a rerun after
an interruption continues where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfcurate.errors import MfcurateError
from mfcurate.publish.metadata import check_deposit_metadata
from mfcurate.publish.package import PACKAGE_MANIFEST, STATE_DIR, load_package, verify_package
from mfcurate.publish.state import DepositState, StateError
from mfcurate.publish.zenodo import ChecksumMismatchError, ZenodoClient, ZenodoError


class DepositError(MfcurateError):
    """The deposit cannot go on (local files corrupt, remote files missing, bad metadata)."""


@dataclass
class DepositResult:
    """Outcome of :func:`deposit_package`.

    Attributes:
        deposition_id: the draft/record id.
        published: whether the record is published now.
        doi: the record's DOI (reserved DOI for a draft).
        record_url: landing page (draft page while unpublished).
        uploaded: files sent in this run.
        skipped: files already on the server with the same md5.
    """

    deposition_id: int
    published: bool
    doi: str | None
    record_url: str | None
    uploaded: list[str]
    skipped: list[str]


def _package_files(out: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    manifest = load_package(out)
    files = {e["path"]: e for e in manifest["files"]}
    from mfcurate.publish.package import file_digests

    md5, sha, n = file_digests(out / PACKAGE_MANIFEST)
    files[PACKAGE_MANIFEST] = {"path": PACKAGE_MANIFEST, "md5": md5, "sha256": sha, "bytes": n}
    return manifest, files


def deposit_package(
    package_dir: Path | str,
    client: ZenodoClient,
    *,
    metadata: Mapping[str, Any] | None = None,
    publish: bool = True,
    new_version_of: str | None = None,
    restart: bool = False,
    progress: Callable[[int], Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> DepositResult:
    """Upload and (optionally) publish the package in ``package_dir``.

    Args:
        package_dir: a folder made by :func:`~mfcurate.publish.package.build_package`.
        client: the API client (carries the token; nothing here stores it).
        metadata: deposit metadata; default ``.publish/deposit.json`` of the package.
        publish: publish at the end (False leaves a draft).
        new_version_of: id of the latest published version to make a new version of.
        restart: forget the local state and start a new draft.
        progress: ``progress(bytes)`` while uploading.
        log: messages for the user.

    Raises:
        DepositError: corrupt local files, incomplete metadata, or remote files that do not
            match (nothing is published then).
        ZenodoError: the API refused a call (message includes the server's explanation).
    """
    say = log or (lambda _m: None)
    out = Path(package_dir)
    problems = verify_package(out)
    if problems:
        raise DepositError(f"{out}: package files do not match manifest.json: "
                           f"{'; '.join(problems[:5])}; rebuild with --dry-run")
    manifest, files = _package_files(out)
    if metadata is None:
        dep_json = out / STATE_DIR / "deposit.json"
        metadata = json.loads(dep_json.read_text()) if dep_json.exists() else {}
    md_problems = check_deposit_metadata(metadata)
    if publish and md_problems:
        raise DepositError("cannot publish: " + "; ".join(md_problems) +
                           " (give them in --metadata FILE)")
    state_path = out / STATE_DIR / "state.json"
    state = None if restart else DepositState.load(state_path)
    fingerprint = str(manifest.get("fingerprint", ""))
    if state is not None and state.base_url != client.base_url:
        raise StateError(f"{state_path}: this package is being deposited on "
                         f"{state.base_url}, not {client.base_url}; pass --restart to begin a "
                         "new deposit there")
    if state is not None and state.published:
        if state.package_fingerprint == fingerprint and \
                new_version_of in (None, state.new_version_of):
            say(f"already published: {state.doi}")
            return DepositResult(int(state.deposition_id or 0), True, state.doi,
                                 state.record_url, [], sorted(files))
        state = None  # a new version, or a changed package, starts a new deposit
    if state is None:
        state = DepositState(client.base_url, fingerprint, new_version_of=new_version_of)

    # --- 1. the draft
    dep: dict[str, Any]
    if state.deposition_id is None:
        if new_version_of:
            dep = client.new_version(new_version_of)
            say(f"new version draft {dep['id']} of record {new_version_of}")
        else:
            dep = client.create_deposition()
            say(f"created draft deposition {dep['id']}")
        state.deposition_id = int(dep["id"])
        state.links = {k: v for k, v in dep["links"].items()
                       if k in ("self", "bucket", "files", "publish", "html", "edit")}
        state.uploaded = {}
        state.save(state_path)
    else:
        try:
            dep = client.get_deposition(state.links.get("self") or state.deposition_id)
        except ZenodoError as exc:
            if exc.status in (404, 410):
                raise DepositError(f"the draft {state.deposition_id} recorded in {state_path} "
                                   "no longer exists on the server; pass --restart to start "
                                   "a new one") from None
            raise
        state.package_fingerprint = fingerprint
        if dep.get("submitted"):
            state.published = True
            state.doi = dep.get("doi")
            state.record_url = dep.get("links", {}).get("record_html") or \
                dep.get("links", {}).get("html")
            state.save(state_path)
            say(f"deposition {dep['id']} was already published")
            return DepositResult(int(dep["id"]), True, state.doi, state.record_url, [],
                                 sorted(files))
        say(f"resuming draft deposition {dep['id']}")

    # --- 2. files
    remote = client.list_files(dep)
    for name, info in remote.items():  # carried-over files of an older version, stale files
        if name not in files:
            client.delete_file(dep, str(info["id"]))
            say(f"removed {name} (not in this package)")
    uploaded, skipped = [], []
    bucket = dep["links"]["bucket"]
    for name in sorted(files):
        e = files[name]
        have = remote.get(name)
        if have is not None and have["checksum"] == e["md5"]:
            skipped.append(name)
            state.uploaded[name] = e["md5"]
            continue
        say(f"uploading {name} ({int(e['bytes']):,} bytes)")
        state.uploaded.pop(name, None)
        state.save(state_path)
        try:
            obj = client.upload(bucket, name, out / name, progress=progress)
        except ChecksumMismatchError as exc:
            state.save(state_path)
            raise DepositError(f"{exc}; nothing was published; rerun to upload it again"
                               ) from None
        if obj["local_md5"] != e["md5"]:
            raise DepositError(f"{name}: the file changed on disk while uploading "
                               "(md5 differs from manifest.json); rebuild the package")
        state.uploaded[name] = e["md5"]
        state.save(state_path)
        uploaded.append(name)

    # --- 3. metadata
    if md_problems:
        say("metadata incomplete (" + "; ".join(md_problems) + "); draft left without it")
    else:
        dep = client.set_metadata(dep, metadata)
        state.metadata_set = True
        state.save(state_path)

    # --- 4. verify every remote checksum
    remote = client.list_files(dep)
    bad = [f"{n}: missing on the server" for n in sorted(files) if n not in remote]
    bad += [f"{n}: remote md5 {remote[n]['checksum']} != local {files[n]['md5']}"
            for n in sorted(files) if n in remote and remote[n]["checksum"] != files[n]["md5"]]
    bad += [f"{n}: on the server but not in the package" for n in sorted(remote)
            if n not in files]
    if bad:
        for n in files:
            if n in remote and remote[n]["checksum"] != files[n]["md5"]:
                state.uploaded.pop(n, None)
        state.save(state_path)
        raise DepositError("remote files do not match the package, not publishing: " +
                           "; ".join(bad[:5]))
    links = dep.get("links", {})
    if not publish:
        say(f"draft ready (not published): {links.get('html')}")
        return DepositResult(int(dep["id"]), False,
                             dep.get("metadata", {}).get("prereserve_doi", {}).get("doi"),
                             links.get("html"), uploaded, skipped)

    # --- 5. publish
    try:
        done = client.publish(dep)
    except ZenodoError:
        state.save(state_path)
        raise
    state.published = True
    state.doi = done.get("doi")
    state.record_url = done.get("links", {}).get("record_html") or links.get("html")
    state.save(state_path)
    say(f"published {state.doi}")
    return DepositResult(int(done["id"]), True, state.doi, state.record_url, uploaded, skipped)

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


@dataclass
class _Run:
    """What every step of one :func:`deposit_package` call shares.

    Attributes:
        out: the package folder.
        client: the API client.
        files: package-relative path -> manifest entry (``md5``, ``sha256``, ``bytes``),
            ``manifest.json`` itself included.
        state: the resumable deposit state, saved to ``state_path`` after every step.
        state_path: ``<out>/.publish/state.json``.
        say: messages for the user.
        progress: ``progress(bytes)`` while uploading.
    """

    out: Path
    client: ZenodoClient
    files: dict[str, dict[str, Any]]
    state: DepositState
    state_path: Path
    say: Callable[[str], None]
    progress: Callable[[int], Any] | None

    def save(self) -> None:
        """Write the state to ``state_path``."""
        self.state.save(self.state_path)


def _check_package(
    out: Path, metadata: Mapping[str, Any] | None, publish: bool,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], Mapping[str, Any], list[str]]:
    """Verify the local files and the metadata before anything is sent.

    Returns:
        ``(manifest, files, metadata, md_problems)``: the loaded manifest, the files to
        deposit (see :class:`_Run`), the metadata to set (default ``.publish/deposit.json``,
        or ``{}``) and what the metadata lacks (empty when complete).

    Raises:
        DepositError: local files differ from ``manifest.json``, or ``publish`` is asked for
            with incomplete metadata.
    """
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
    return manifest, files, metadata, md_problems


def _load_state(
    state_path: Path, client: ZenodoClient, *, fingerprint: str,
    new_version_of: str | None, restart: bool, files: Mapping[str, Any],
    say: Callable[[str], None],
) -> DepositState | DepositResult:
    """The state to continue from, a fresh one, or the result when already published.

    A published state of the same package (and the same ``new_version_of``) ends the run
    with that record; a published state of another package or version starts afresh.

    Raises:
        StateError: the recorded deposit is on another server than ``client.base_url``.
    """
    state = None if restart else DepositState.load(state_path)
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
    return state


def _open_draft(run: _Run, fingerprint: str,
                new_version_of: str | None) -> dict[str, Any] | DepositResult:
    """Create the draft (or a new version's draft), or fetch the recorded one to resume.

    Returns:
        the deposition (Zenodo JSON), or the result when the recorded draft turns out to be
        published already.

    Raises:
        DepositError: the recorded draft no longer exists on the server (404/410).
    """
    state, client, say = run.state, run.client, run.say
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
        run.save()
        return dep
    try:
        dep = client.get_deposition(state.links.get("self") or state.deposition_id)
    except ZenodoError as exc:
        if exc.status in (404, 410):
            raise DepositError(f"the draft {state.deposition_id} recorded in {run.state_path} "
                               "no longer exists on the server; pass --restart to start "
                               "a new one") from None
        raise
    state.package_fingerprint = fingerprint
    if dep.get("submitted"):
        state.published = True
        state.doi = dep.get("doi")
        state.record_url = dep.get("links", {}).get("record_html") or \
            dep.get("links", {}).get("html")
        run.save()
        say(f"deposition {dep['id']} was already published")
        return DepositResult(int(dep["id"]), True, state.doi, state.record_url, [],
                             sorted(run.files))
    say(f"resuming draft deposition {dep['id']}")
    return dep


def _sync_files(run: _Run, dep: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Make the draft's files those of the package.

    Deletes remote files the package lacks, skips files already there with the same md5 and
    streams the others to the bucket, saving the state around every upload.

    Returns:
        ``(uploaded, skipped)`` file names, sorted.

    Raises:
        DepositError: the server's md5 of an upload differs, or a file changed on disk.
    """
    client, files, state, say = run.client, run.files, run.state, run.say
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
        run.save()
        try:
            obj = client.upload(bucket, name, run.out / name, progress=run.progress)
        except ChecksumMismatchError as exc:
            run.save()
            raise DepositError(f"{exc}; nothing was published; rerun to upload it again"
                               ) from None
        if obj["local_md5"] != e["md5"]:
            raise DepositError(f"{name}: the file changed on disk while uploading "
                               "(md5 differs from manifest.json); rebuild the package")
        state.uploaded[name] = e["md5"]
        run.save()
        uploaded.append(name)
    return uploaded, skipped


def _set_metadata(run: _Run, dep: dict[str, Any], metadata: Mapping[str, Any],
                  md_problems: list[str]) -> dict[str, Any]:
    """Set the draft's metadata when complete (else leave the draft without it).

    Returns:
        the deposition as the server returns it after the update (``dep`` when not set).
    """
    if md_problems:
        run.say("metadata incomplete (" + "; ".join(md_problems) + "); draft left without it")
        return dep
    dep = run.client.set_metadata(dep, metadata)
    run.state.metadata_set = True
    run.save()
    return dep


def _verify_remote(run: _Run, dep: dict[str, Any]) -> None:
    """Compare every remote file's md5 with the package's.

    Files with a wrong md5 are forgotten in the state, so that a rerun uploads them again.

    Raises:
        DepositError: a file is missing on the server, has another md5, or is not in the
            package (nothing is published then).
    """
    files = run.files
    remote = run.client.list_files(dep)
    bad = [f"{n}: missing on the server" for n in sorted(files) if n not in remote]
    bad += [f"{n}: remote md5 {remote[n]['checksum']} != local {files[n]['md5']}"
            for n in sorted(files) if n in remote and remote[n]["checksum"] != files[n]["md5"]]
    bad += [f"{n}: on the server but not in the package" for n in sorted(remote)
            if n not in files]
    if bad:
        for n in files:
            if n in remote and remote[n]["checksum"] != files[n]["md5"]:
                run.state.uploaded.pop(n, None)
        run.save()
        raise DepositError("remote files do not match the package, not publishing: " +
                           "; ".join(bad[:5]))


def _publish(run: _Run, dep: dict[str, Any], uploaded: list[str],
             skipped: list[str]) -> DepositResult:
    """Publish the verified draft and record its DOI and landing page.

    Raises:
        ZenodoError: the server refused to publish (the state is saved first).
    """
    state, links = run.state, dep.get("links", {})
    try:
        done = run.client.publish(dep)
    except ZenodoError:
        run.save()
        raise
    state.published = True
    state.doi = done.get("doi")
    state.record_url = done.get("links", {}).get("record_html") or links.get("html")
    run.save()
    run.say(f"published {state.doi}")
    return DepositResult(int(done["id"]), True, state.doi, state.record_url, uploaded, skipped)


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
    manifest, files, metadata, md_problems = _check_package(out, metadata, publish)
    state_path = out / STATE_DIR / "state.json"
    fingerprint = str(manifest.get("fingerprint", ""))
    state = _load_state(state_path, client, fingerprint=fingerprint,
                        new_version_of=new_version_of, restart=restart, files=files, say=say)
    if isinstance(state, DepositResult):
        return state
    run = _Run(out, client, files, state, state_path, say, progress)
    dep = _open_draft(run, fingerprint, new_version_of)
    if isinstance(dep, DepositResult):
        return dep
    uploaded, skipped = _sync_files(run, dep)
    dep = _set_metadata(run, dep, metadata, md_problems)
    _verify_remote(run, dep)
    if not publish:
        links = dep.get("links", {})
        say(f"draft ready (not published): {links.get('html')}")
        return DepositResult(int(dep["id"]), False,
                             dep.get("metadata", {}).get("prereserve_doi", {}).get("doi"),
                             links.get("html"), uploaded, skipped)
    return _publish(run, dep, uploaded, skipped)

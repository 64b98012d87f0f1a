"""``mfcurate publish``: build the package, and deposit it on Zenodo when asked.

One function, :func:`publish_dataset`, used by the CLI and the recipe step ``publish``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mfcurate.errors import UsageError
from mfcurate.publish.zenodo import SANDBOX_URL, ZENODO_URL, ZenodoClient

TOKEN_ENV = "ZENODO_TOKEN"


def api_url(*, zenodo: bool = False, sandbox: bool = False, url: str | None = None) -> str:
    """The API root chosen by ``--zenodo``, ``--sandbox`` or ``--url`` (exactly one)."""
    chosen = [x for x in (zenodo, sandbox, bool(url)) if x]
    if len(chosen) != 1:
        raise UsageError("choose one of --zenodo, --sandbox or --url BASE")
    if url:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--url {url!r} is not an http(s) URL (e.g. https://zenodo.org/api)")
        return url.rstrip("/")
    return SANDBOX_URL if sandbox else ZENODO_URL


def read_token(token_file: Path | str | None = None) -> str:
    """The access token from ``token_file`` or ``$ZENODO_TOKEN`` (never echoed)."""
    if token_file is not None:
        p = Path(token_file)
        try:
            token = p.read_text().strip()
        except FileNotFoundError:
            raise UsageError(f"--token-file {p} does not exist") from None
        if not token:
            raise UsageError(f"--token-file {p} is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no Zenodo token: set {TOKEN_ENV} or pass --token-file FILE")
    return token


def publish_dataset(
    dataset: Path | str,
    out_dir: Path | str,
    *,
    dry_run: bool = False,
    zenodo: bool = False,
    sandbox: bool = False,
    url: str | None = None,
    token_file: Path | str | None = None,
    metadata_file: Path | str | None = None,
    license: str | None = None,
    version: str = "1.0.0",
    publish: bool = True,
    new_version_of: str | None = None,
    include_crops: bool = False,
    include_images: bool = False,
    crop_size: int = 128,
    archive_bytes: int = 10 * 10**9,
    sources: list[str] | None = None,
    restart: bool = False,
    rebuild: bool = False,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int], Any] | None = None,
    client_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the upload set; with a target, deposit (and publish) it.

    Returns:
        ``{"package": dir, "files": n, "bytes": n, "license": spdx, "problems": [...],
        "warnings": [...], "deposit": {...} or None}``.
    """
    from mfcurate.publish.deposit import deposit_package
    from mfcurate.publish.metadata import load_metadata
    from mfcurate.publish.package import build_package

    target = None if dry_run else api_url(zenodo=zenodo, sandbox=sandbox, url=url)
    token = read_token(token_file) if target else None
    metadata = load_metadata(metadata_file) if metadata_file else {}
    pkg = build_package(dataset, out_dir, version=version, license=license, metadata=metadata,
                        include_crops=include_crops, crop_size=crop_size,
                        include_images=include_images, max_archive_bytes=archive_bytes,
                        filters={"sources": sources} if sources else None, rebuild=rebuild,
                        log=log)
    result: dict[str, Any] = {"package": str(pkg.out_dir), "files": len(pkg.files) + 1,
                              "bytes": pkg.total_bytes, "license": pkg.license,
                              "problems": pkg.problems, "warnings": pkg.warnings,
                              "reused": pkg.reused, "deposit": None}
    if target is None or token is None:
        return result
    client = ZenodoClient(target, token, log=log, **(client_options or {}))
    dep = deposit_package(pkg.out_dir, client, metadata=pkg.deposit_metadata, publish=publish,
                          new_version_of=new_version_of, restart=restart, progress=progress,
                          log=log)
    result["deposit"] = {"id": dep.deposition_id, "published": dep.published, "doi": dep.doi,
                         "url": dep.record_url, "uploaded": dep.uploaded,
                         "skipped": dep.skipped}
    return result

"""Benchmark: packaging and upload throughput, and memory while uploading a large file.

Run from the repository root:

    PYTHONPATH=. python bench/bench_publish.py [--mb-per-image 8] [--images 12] [--big-mb 600]

Prints, each against a baseline measured in the same process:

* packaging throughput (MB/s of ``build_package`` with the images archived) vs. a plain
  copy + md5 + sha256 of the same files;
* upload throughput (MB/s of ``deposit_package`` against the local Zenodo stand-in on
  loopback, stand-in in its own process) vs. a bare ``requests.put`` of the same bytes;
* peak memory of a child process that uploads a file larger than the address-space limit it
  sets on itself (``RLIMIT_AS`` = its size after imports + headroom): the upload streams, so
  it finishes; reading the file into memory would fail.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "publish"))
TOKEN = "bench-token-0b1c2d"

CHILD = r"""
import resource, sys, time
from pathlib import Path
from mfcurate.publish.zenodo import ZenodoClient

def vm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0

url, token, path, headroom = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
client = ZenodoClient(url, token)
dep = client.create_deposition()
base = vm("VmSize:")
limit = base + headroom
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    bytearray(path.stat().st_size)   # proves the limit bites: the whole file cannot be held
    held = "yes"
except MemoryError:
    held = "no"
rss0 = vm("VmRSS:")
t = time.perf_counter()
obj = client.upload(dep["links"]["bucket"], "big.bin", path)
dt = time.perf_counter() - t
print(f"{base} {limit} {vm('VmHWM:')} {rss0} {dt:.3f} {obj['size']} {held}")
"""


def start_standin(store: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "mfcurate.testing.zenodo_standin", TOKEN],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=store)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def digest_copy(files: list[Path], dst: Path) -> float:
    t = time.perf_counter()
    for p in files:
        shutil.copyfile(p, dst / p.name)
        md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        with p.open("rb") as f:
            while b := f.read(1 << 20):
                md5.update(b)
                sha.update(b)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=12, help="images per source")
    ap.add_argument("--mb-per-image", type=float, default=8.0)
    ap.add_argument("--big-mb", type=int, default=600)
    ap.add_argument("--headroom-mb", type=int, default=128)
    args = ap.parse_args()

    import requests
    from synthetic_dataset import build_dataset

    from mfcurate.dataset import Dataset
    from mfcurate.publish.deposit import deposit_package
    from mfcurate.publish.package import build_package
    from mfcurate.publish.zenodo import ZenodoClient

    tmp = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    try:
        ds_path = build_dataset(tmp, n_images=args.images, size=128)
        ds = Dataset.open(ds_path)
        rng_bytes = os.urandom(1 << 20)
        files = []
        for row in ds.images().to_pylist():  # large, incompressible "image files"
            p = ds.image_path(row)
            with p.open("wb") as f:
                for _ in range(int(args.mb_per_image)):
                    f.write(rng_bytes)
            files.append(p)
        data_mb = sum(p.stat().st_size for p in files) / 1e6
        (tmp / "copy").mkdir()
        t_base = digest_copy(files, tmp / "copy")
        shutil.rmtree(tmp / "copy")
        md = {"title": "bench", "creators": [{"name": "Bench, Mark"}], "description": "b"}
        t = time.perf_counter()
        pkg = build_package(ds, tmp / "release", metadata=md, include_images=True,
                            max_archive_bytes=int(40e6))
        t_pkg = time.perf_counter() - t
        pkg_mb = pkg.total_bytes / 1e6
        print(f"packaging: {pkg_mb:.0f} MB in {len(pkg.files) + 1} files, {t_pkg:.2f} s = "
              f"{pkg_mb / t_pkg:.0f} MB/s; baseline copy+md5+sha256 of the images "
              f"{data_mb / t_base:.0f} MB/s; ratio {(pkg_mb / t_pkg) / (data_mb / t_base):.2f}")

        store = tmp / "store"
        store.mkdir()
        proc, url = start_standin(store)
        try:
            client = ZenodoClient(url, TOKEN)
            t = time.perf_counter()
            res = deposit_package(tmp / "release", client)
            t_up = time.perf_counter() - t
            assert res.published
            biggest = max((tmp / "release").glob("*.tar"), key=lambda p: p.stat().st_size)
            dep = client.create_deposition()
            t = time.perf_counter()
            with biggest.open("rb") as f:
                r = requests.put(f"{dep['links']['bucket']}/raw.bin", data=f, timeout=60,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
            t_raw = time.perf_counter() - t
            assert r.status_code == 201
            raw_mbs = biggest.stat().st_size / 1e6 / t_raw
            print(f"upload: {pkg_mb:.0f} MB deposited + verified + published in {t_up:.2f} s = "
                  f"{pkg_mb / t_up:.0f} MB/s; baseline bare requests.put "
                  f"{raw_mbs:.0f} MB/s; ratio {(pkg_mb / t_up) / raw_mbs:.2f}")

            big = tmp / "big.bin"
            with big.open("wb") as f:
                chunk = os.urandom(1 << 20)
                for _ in range(args.big_mb):
                    f.write(chunk)
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            out = subprocess.run([sys.executable, "-c", CHILD, url, TOKEN, str(big),
                                  str(args.headroom_mb << 20)], capture_output=True, text=True,
                                 env=env, timeout=600)
            if out.returncode != 0:
                print("large upload FAILED:", out.stderr[-2000:])
                sys.exit(1)
            base, limit, hwm, rss0, secs, size, held = out.stdout.split()
            print(f"large upload: {int(size) / 1e6:.0f} MB file under RLIMIT_AS = "
                  f"{int(limit) / 1e6:.0f} MB (process size after imports "
                  f"{int(base) / 1e6:.0f} MB + {args.headroom_mb} MB headroom; the whole file "
                  f"fits in memory: {held}); peak RSS {int(hwm) / 1e6:.0f} MB (RSS before upload "
                  f"{int(rss0) / 1e6:.0f} MB); {int(size) / 1e6 / float(secs):.0f} MB/s")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

from __future__ import annotations

import pytest

from mfcurate.errors import UsageError
from mfcurate.publish.licenses import LicenseError, parse_license, resolve_license


@pytest.mark.parametrize(("text", "spdx"), [
    ("CC0-1.0", "CC0-1.0"), ("CC0", "CC0-1.0"), ("cc-by-4.0", "CC-BY-4.0"),
    ("CC BY-NC-SA 4.0", "CC-BY-NC-SA-4.0"), ("CC-BY-NC-ND-2.0", "CC-BY-NC-ND-4.0"),
    ("https://creativecommons.org/licenses/by-nc/4.0/", "CC-BY-NC-4.0"),
    ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0"),
])
def test_parse(text: str, spdx: str) -> None:
    assert parse_license(text).spdx == spdx


@pytest.mark.parametrize("text", ["research-only", "MIT", "CC-SA-4.0", "cc-by-sa-nd-4.0"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(LicenseError):
        parse_license(text)


def test_most_restrictive_wins() -> None:
    r = resolve_license({"a": "CC0-1.0", "b": "CC-BY-4.0", "c": "CC-BY-NC-SA-4.0"})
    assert r.license.spdx == "CC-BY-NC-SA-4.0"
    assert r.license.zenodo_id == "cc-by-nc-sa-4.0"
    assert r.license.url == "https://creativecommons.org/licenses/by-nc-sa/4.0/"
    assert resolve_license({"a": "CC0-1.0"}).license.spdx == "CC0-1.0"
    # NC from one source and SA from another combine
    assert resolve_license({"a": "CC-BY-NC-4.0", "b": "CC-BY-SA-4.0"}).license.spdx == \
        "CC-BY-NC-SA-4.0"


def test_override_only_upward() -> None:
    r = resolve_license({"a": "CC0-1.0", "b": "CC-BY-4.0"}, "CC-BY-NC-4.0")
    assert r.license.spdx == "CC-BY-NC-4.0" and r.derived.spdx == "CC-BY-4.0"
    with pytest.raises(UsageError, match="NC"):
        resolve_license({"a": "CC-BY-NC-4.0"}, "CC-BY-4.0")
    with pytest.raises(UsageError):
        resolve_license({"a": "CC-BY-4.0"}, "CC0-1.0")


def test_conflicts_and_unknown() -> None:
    with pytest.raises(LicenseError, match="ShareAlike"):
        resolve_license({"a": "CC-BY-SA-4.0", "b": "CC-BY-NC-ND-2.0"})
    with pytest.raises(LicenseError, match=r"source\(s\) b .*--license"):
        resolve_license({"a": "CC0-1.0", "b": "unknown"})
    r = resolve_license({"a": "CC0-1.0", "b": "unknown"}, "CC-BY-4.0")
    assert r.license.spdx == "CC-BY-4.0" and any("unknown" in w for w in r.warnings)
    with pytest.raises(LicenseError, match="tupac16"):
        resolve_license({"tupac16": "research-only"})
    nd = resolve_license({"a": "CC-BY-NC-ND-2.0"})
    assert nd.license.spdx == "CC-BY-NC-ND-4.0" and any("NoDerivatives" in w for w in nd.warnings)

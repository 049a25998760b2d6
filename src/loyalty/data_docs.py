"""GX Data Docs that work offline: the scripts, styles and fonts GX's pages load from CDNs, served by the site itself.

GX Core's page templates load jQuery, Bootstrap, bootstrap-table, Font Awesome, Vega and a few more from CDNs, and
bootstrap-table fills the index's lists by JavaScript: without internet (a closed network, a laptop on a train) the
site is unstyled and its lists are empty. ``make_offline`` copies the files vendored in ``gx/data_docs_assets`` (the
versions of GX's CDN addresses, from the npm registry; ``manifest.json`` there lists them) into the site's
``static/vendor/`` and points every page at them with relative paths, so the published folder can be moved, served
by any web server or opened as files. GX's logo, which its pages load from GX's web-assets bucket (with the run's
time as a query string), becomes the copy GX already writes into ``static/images/``.

Links (``<a href>``) to GX's web site and documentation stay as they are: following a link loads nothing until the
reader clicks it, and offline the click fails like any link would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from functools import cache
from pathlib import Path

from loyalty.config import PROJECT_DIR

ASSETS_DIR = PROJECT_DIR / "gx" / "data_docs_assets"
MANIFEST = "manifest.json"
SITE_ASSETS = "static/vendor"  # where the vendored files go in a Data Docs site
_NOT_ASSETS = (MANIFEST, "vendor.sh", "README.md")
# GX's images on its web-assets bucket, as <img src> and CSS url(): GX's own copy in the site. The dark theme's
# light logo has no copy in GX's package; it gets the same logo.
_GX_IMAGE = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/(?:logo-long|full_logo_dark)\.png"
    r"(?:\?[^\"'()\s]*)?"
)
# A reference to the site's own static/ folder. GX 1.24 computes the favicon's one level too short on validation
# pages (a 404 online too); every such reference is made relative to the site's root again.
_STATIC = re.compile(r"(?<=[\"'(])(?:\./|(?:\.\./)+)static/")
_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
# Subresource integrity needs a CORS fetch, which a page opened as a file cannot make; the vendored files' hashes
# are checked against GX's templates by the tests instead.
_INTEGRITY = re.compile(r"\s+(?:integrity|crossorigin)=\"[^\"]*\"", re.IGNORECASE)


@cache
def cdn_assets(assets_dir: Path = ASSETS_DIR) -> dict[str, str]:
    """Every CDN address GX's pages load, and its vendored file (relative to ``assets_dir``)."""
    manifest = json.loads((assets_dir / MANIFEST).read_text(encoding="utf-8"))
    assets = {}
    for package in manifest["packages"]:
        for file, urls in package["files"].items():
            for url in urls:
                assets[url] = f"{package['name']}@{package['version']}/{file}"
    return assets


def _rewrite(html: str, root: str, assets: dict[str, str]) -> str:
    def tag(match: re.Match[str]) -> str:
        text = match.group(0)
        for url, path in assets.items():
            for quote in "\"'":
                if f"{quote}{url}{quote}" in text:
                    text = text.replace(f"{quote}{url}{quote}", f"{quote}{root}/{SITE_ASSETS}/{path}{quote}")
                    text = _INTEGRITY.sub("", text)
        return text

    html = _STATIC.sub(f"{root}/static/", _TAG.sub(tag, html))
    return _GX_IMAGE.sub(f"{root}/static/images/logo-long.png", html)


def make_offline(site: Path, assets_dir: Path = ASSETS_DIR) -> None:
    """Copy the vendored assets into the Data Docs ``site`` and point every page of it at them (relative paths)."""
    assets = cdn_assets(assets_dir)
    target = site / SITE_ASSETS
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(assets_dir, target, ignore=shutil.ignore_patterns(*_NOT_ASSETS))
    for page in site.rglob("*.html"):
        root = Path(os.path.relpath(site, page.parent)).as_posix()
        page.write_text(_rewrite(page.read_text(encoding="utf-8"), root, assets), encoding="utf-8")

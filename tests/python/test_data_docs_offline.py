"""The GX Data Docs of a real validation run are readable offline: every page loads only files of the site itself, and
headless Chromium with the network blocked shows the index's lists filled in by bootstrap-table's JavaScript.

The control: the same site pointed back at the CDN addresses GX's templates use shows empty lists in the same
Chromium, so the blocking really blocks (on a machine with internet too) and the rows come from the vendored files.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from loyalty.data_docs import ASSETS_DIR, MANIFEST, SITE_ASSETS, cdn_assets
from loyalty.report import BuildResult

CHROMIUM = "/usr/bin/chromium"  # Debian's package chromium
PAGE_SIZE = 10  # bootstrap-table's first page, as GX's index shows it
VALIDATIONS_TABLE = "ge-index-page-validation-results-table"
SUITES_TABLE = "ge-index-page-expectation_suites-table"
# Everything but 127.0.0.1 goes to a closed port, and no host name resolves.
NO_NETWORK = [
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>;127.0.0.1",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
_LOCAL_REFERENCE = re.compile(r"<(?:script|link|img)\b[^>]*?\b(?:src|href)=\"([^\"#]+)\"", re.IGNORECASE)
# Any address on another host: http(s)://host or a protocol-relative //host in an attribute or a CSS url().
_ADDRESS = re.compile(r"https?://[^\s\"'<>()]+|(?<=[\"'(])//[\w-]+(?:\.[\w-]+)+[^\s\"'<>()]*", re.IGNORECASE)
_LINK_TARGET = re.compile(r"<a\b[^>]*\bhref=\"$", re.IGNORECASE)
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name in inline SVG images (data: URLs), never fetched
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


@pytest.fixture(scope="module")
def site(bundled: BuildResult) -> Path:
    assert bundled.validation is not None
    return bundled.validation.docs_index.parent


@contextmanager
def served(folder: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """``folder`` served over http on a free port of 127.0.0.1: (base URL, the (path, status) of every request)."""
    requests: list[tuple[str, int]] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            requests.append((unquote(urlsplit(self.path).path), int(code)))

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def rendered_dom(url: str, profile: Path) -> str:
    """The DOM of ``url`` after its scripts ran, from headless Chromium with no network but 127.0.0.1."""
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: apt-get install chromium"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *NO_NETWORK,
        "--virtual-time-budget=15000",
        "--dump-dom",
        url,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0 and "</html>" in completed.stdout, completed.stderr[-2000:]
    return completed.stdout


class Tables(HTMLParser):
    """The text of every body cell of each table of a DOM, by the table's class, and the text of its pagination."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.pagination: list[str] = []
        self._table: str | None = None
        self._in_body = self._in_cell = self._in_pagination = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "table" and self._table is None:
            self._table = next((c for c in classes if c.startswith("ge-")), "")
            self.rows.setdefault(self._table, [])
        elif tag == "tbody" and self._table is not None:
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows[self._table].append([])  # type: ignore[index]
        elif tag == "td" and self._in_body:
            self._in_cell = True
            self.rows[self._table][-1].append("")  # type: ignore[index]
        elif tag == "span" and "pagination-info" in classes:
            self._in_pagination = True
            self.pagination.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table, self._in_body = None, False
        elif tag == "tbody":
            self._in_body = False
        elif tag == "td":
            self._in_cell = False
        elif tag == "span":
            self._in_pagination = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[self._table][-1][-1] += data.strip()  # type: ignore[index]
        if self._in_pagination:
            self.pagination[-1] += data


def tables(dom: str) -> Tables:
    parser = Tables()
    parser.feed(dom)
    return parser


def as_gx_wrote_it(site: Path, copy: Path) -> Path:
    """A copy of ``site`` whose pages load the vendored files from the CDN addresses GX's templates use."""
    shutil.copytree(site, copy)
    for page in copy.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for url, path in cdn_assets().items():
            html = re.sub(rf"(?:\.\./)*\.?/?{SITE_ASSETS}/{re.escape(path)}\"", f'{url}"', html)
        page.write_text(html, encoding="utf-8")
    return copy


# ---------------------------------------------------------------------------------------------------------------------


def external_addresses(html: str) -> list[str]:
    """Every address on another host in a page, except the targets of <a href> links, which load nothing."""
    return [
        match.group(0)
        for match in _ADDRESS.finditer(html)
        if not _LINK_TARGET.search(html, max(0, match.start() - 1000), match.start())
        and match.group(0) != SVG_NAMESPACE
    ]


def test_no_page_loads_anything_from_another_host(site: Path) -> None:
    """Every page's scripts, styles, images and fonts are files of the site, found at their relative paths."""
    pages = sorted(site.rglob("*.html"))
    validation_pages = list((site / "validations").rglob("*.html"))
    assert len(pages) == 1 + 2 * len(validation_pages) > 40  # the index, a page per suite and per validation
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert external_addresses(html) == [], page
        local = _LOCAL_REFERENCE.findall(html)
        assert any("jquery.min.js" in reference for reference in local), page
        for reference in local:
            assert not reference.startswith("/"), (page, reference)  # relative: the folder can move
            assert (page.parent / urlsplit(reference).path).resolve().is_file(), (page, reference)
    # The only links left to other hosts are links a reader may follow (GX's web site and documentation).
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "https://greatexpectations.io" in index and "https://cdn" not in index and "amazonaws" not in index
    # Fonts and images that the vendored style sheets load are there too.
    for sheet in (site / SITE_ASSETS).rglob("*.css"):
        for reference in _CSS_URL.findall(sheet.read_text(encoding="utf-8")):
            if not reference.startswith("data:"):
                assert (sheet.parent / urlsplit(reference).path).resolve().is_file(), (sheet, reference)


def test_the_vendored_files_are_the_ones_gx_templates_load() -> None:
    """Every address GX's installed page templates load is vendored, and where a template pins a file by its hash
    (subresource integrity) the vendored file has that hash: a GX upgrade that changes its CDN files fails here."""
    package = importlib.util.find_spec("great_expectations")  # without importing GX (seconds)
    assert package is not None and package.origin is not None
    templates = Path(package.origin).parent / "render" / "view" / "templates"
    assets = cdn_assets()
    loaded: set[str] = set()
    for template in templates.glob("*.j2"):
        text = template.read_text(encoding="utf-8")
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", text):
            url = re.search(r"(?:src|href)=\"(https?://[^\"]+)\"", tag)
            if url is None:
                continue
            loaded.add(url.group(1))
            assert url.group(1) in assets, f"{template.name}: {url.group(1)} is not vendored"
            integrity = re.search(r"integrity=\"(sha384-[^\"]+)\"", tag)
            if integrity:
                content = (ASSETS_DIR / assets[url.group(1)]).read_bytes()
                digest = "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode()
                assert digest == integrity.group(1), url.group(1)
    assert len(loaded) == len(assets) == 16  # and nothing is vendored that no template loads
    # Each package's license file is beside its files (vega's and popper.js's npm packages ship none: README.md).
    for package in json.loads((ASSETS_DIR / MANIFEST).read_text(encoding="utf-8"))["packages"]:
        folder = ASSETS_DIR / f"{package['name']}@{package['version']}"
        assert all((folder / file).is_file() for file in package["files"]), folder
        assert (
            (folder / package["license_file"]).is_file()
            if package["license_file"]
            else package["name"]
            in (
                "vega",
                "popper.js",
            )
        )


def test_the_index_lists_the_validation_results_with_no_network(
    bundled: BuildResult, site: Path, tmp_path: Path
) -> None:
    assert bundled.validation is not None
    suites = sorted(bundled.validation.suites)
    assert len(suites) > PAGE_SIZE

    with served(site) as (base, requests):
        dom = rendered_dom(f"{base}/index.html", tmp_path / "profile")
    found = tables(dom)
    validations, listed_suites = found.rows[VALIDATIONS_TABLE], found.rows[SUITES_TABLE]
    # bootstrap-table rendered the first page of each list from the page's data: the rows exist only if its
    # JavaScript ran (the page's HTML has empty <table> elements).
    assert len(validations) == PAGE_SIZE and all(row[-1] in suites for row in validations), validations
    assert [row[0] for row in listed_suites] == suites[:PAGE_SIZE]
    assert [text.strip() for text in found.pagination] == [f"Showing 1 to {PAGE_SIZE} of {len(suites)} rows"] * 2
    # Every file the page asked for was there, the vendored scripts and the icons' font among them.
    assert requests and all(status == 200 for _, status in requests), requests
    paths = {path for path, _ in requests}
    assert f"/{SITE_ASSETS}/jquery@3.7.1/dist/jquery.min.js" in paths
    assert f"/{SITE_ASSETS}/@fortawesome/fontawesome-free@6.6.0/webfonts/fa-solid-900.woff2" in paths

    # The same, opened as a file (no server: the folder moved anywhere).
    opened = tables(rendered_dom((site / "index.html").as_uri(), tmp_path / "profile"))
    assert opened.rows == found.rows and opened.pagination == found.pagination

    # A validation result page: bootstrap-table wrapped its tables (class "bootstrap-table"), by JavaScript.
    page = next(p for p in (site / "validations").rglob("*.html") if "marts/fct_orders" in p.as_posix())
    with served(site) as (base, requests):
        dom = rendered_dom(f"{base}/{page.relative_to(site).as_posix()}", tmp_path / "profile")
    assert 'class="bootstrap-table' in dom and "customer_order_number" in dom  # a column the suite checks
    assert all(status == 200 for _, status in requests), requests


def test_without_the_vendored_files_the_same_chromium_shows_empty_lists(site: Path, tmp_path: Path) -> None:
    """The control: the site as GX wrote it (CDN addresses), in the same Chromium with the same blocked network."""
    original = as_gx_wrote_it(site, tmp_path / "site")
    assert "https://code.jquery.com/jquery-3.7.1.min.js" in (original / "index.html").read_text(encoding="utf-8")
    with served(original) as (base, requests):
        dom = rendered_dom(f"{base}/index.html", tmp_path / "profile")
    found = tables(dom)
    assert found.rows[VALIDATIONS_TABLE] == [] and found.rows[SUITES_TABLE] == [] and found.pagination == []
    assert not any(path.startswith(f"/{SITE_ASSETS}/") for path, _ in requests)

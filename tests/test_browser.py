"""The rendered report as a reader opens it: every page in headless Chromium, from the file
system, with nothing fetched from elsewhere."""

import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from .conftest import ROOT

webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="Debian's chromium and chromium-driver are not installed"),
    pytest.mark.xdist_group("browser"),
]


def start_chromium(profile: Path):
    """Headless Chromium through its driver, logging the console and every network request;
    the flags keep it from reaching for the network on its own."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def check_page(driver, page: Path) -> list[str]:
    """What a reader would find wrong on ``page``: broken images, missing alt text, dead local
    links, console errors, requests that leave the file system."""
    driver.get_log("performance")  # forget the previous page's requests
    driver.get(page.as_uri())
    problems = []
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0, i.getAttribute('alt') || ''])")
    for i, (decoded, alt) in enumerate(images):
        if not decoded:
            problems.append(f"image {i} does not decode")
        if len(alt.strip()) < 10 or "No description" in alt:
            problems.append(f"image {i} has no alt text saying what it shows: {alt!r}")
    for href in driver.execute_script("return Array.from(document.links).map(a => a.href)"):
        url = urlparse(href)
        if url.scheme == "file" and not Path(unquote(url.path)).exists():
            problems.append(f"link to a missing file: {href}")
    for entry in driver.get_log("browser"):
        if entry["level"] == "SEVERE":
            problems.append(f"console: {entry['message']}")
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(("file:", "data:", "about:", "chrome:", "devtools:")):  # the browser's own pages
                problems.append(f"request leaves the file system: {url[:100]}")
    return problems


def pages(reports: Path) -> list[Path]:
    return [reports / "index.html", *sorted(reports.glob("*/*.html"))]


def test_every_committed_page_opens_whole_and_self_contained(browser):
    found = {str(page.relative_to(ROOT)): check_page(browser, page) for page in pages(ROOT / "reports")}
    assert len(found) == 11
    assert {page: problems for page, problems in found.items() if problems} == {}

"""One real-browser test: `streamlit run` on 127.0.0.1, Debian's Chromium driven by Selenium (no browser is
downloaded), every page loaded and screenshotted to test-artifacts/dashboard/, and an upload on "Try an image"
that must show every model's prediction; a non-image and a decompression bomb uploaded must each be one message."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.data.dataset import load_dataset
from tests.conftest import free_port, wait_until_up

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
PAGES = {
    "dataset": "",
    "leaderboard": "leaderboard",
    "per-class": "per-class-analysis",
    "try-an-image": "try-an-image",
    "train": "train",
    "report": "report",
}

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Debian chromium + chromium-driver not installed (make setup)",
)


@pytest.fixture
def dashboard_url(tiny_scenes, tiny_results, fastai_run, keras_run, replica_run):
    port = free_port()
    env = {**os.environ, "DASHBOARD_DATA": str(tiny_scenes.parent), "RESULTS_DIR": str(tiny_results)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard/app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/_stcore/health")
    yield url
    server.terminate()
    server.wait(timeout=30)


def bad_uploads(tmp_path: Path) -> list[tuple[str, bytes, str]]:
    """A text file named .jpg, and a 60-Mpx PNG (a few KB compressed): each must be one message in the page."""
    import io

    from PIL import Image

    bomb = io.BytesIO()
    Image.new("1", (10_000, 6_000)).save(bomb, format="PNG")
    return [
        ("notes.jpg", b"not an image at all", "cannot read image"),
        ("huge.png", bomb.getvalue(), "too large to decode safely"),
    ]


def test_every_page_in_chromium_and_an_upload_shows_every_model(dashboard_url, tiny_scenes, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        wait = WebDriverWait(driver, 120)
        for name, path in PAGES.items():
            driver.get(f"{dashboard_url}/{path}")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "h2"))
            time.sleep(2)  # let charts draw before the screenshot
            assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text
            driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        driver.get(f"{dashboard_url}/try-an-image")
        upload = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0]
        upload.send_keys(str(load_dataset(tiny_scenes).image_paths("test")[0]))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").text.count("predicted:") >= 3)
        time.sleep(2)
        driver.save_screenshot(str(ARTIFACTS / "try-an-image-upload.png"))
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "fastai" in text and "keras" in text and "teachable_machine_replica" in text
        for upload_name, content, message in bad_uploads(tmp_path):
            driver.get(f"{dashboard_url}/try-an-image")
            picker = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0]
            (tmp_path / upload_name).write_bytes(content)
            picker.send_keys(str(tmp_path / upload_name))
            wait.until(lambda d: message in d.find_element(By.TAG_NAME, "body").text)
            assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()

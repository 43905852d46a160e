"""Headless Chromium for the browser tests and ``make screenshot``.

Debian's ``chromium`` and ``chromium-driver`` packages (installed by ``make test`` and
``make screenshot``), driven by Selenium. The driver's path is given explicitly, so
Selenium Manager never runs and nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def chromium(width: int = 1400, height: int = 1000) -> Any:
    """A new headless Chromium session; AssertionError naming the missing package."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.is_file():
            raise AssertionError(f"{path} is missing: install the Debian package {package}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def sign_in(driver: Any, base_url: str, creds: dict[str, str]) -> None:
    """Fill the sign-in form of ``/ui/`` with Keystone credentials and submit it."""
    from selenium.webdriver.common.by import By

    driver.get(base_url + "/ui/")
    for field, key in (
        ("user", "username"),
        ("password", "password"),
        ("project", "project_name"),
        ("domain", "user_domain_name"),
    ):
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(creds[key])
    driver.find_element(By.ID, "signin").click()

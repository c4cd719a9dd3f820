"""`e2e serve`, end to end: a real server process, real HTTP, a real headless browser.

The browser is Debian's chromium driven by Selenium through Debian's chromedriver (both
installed by setup.sh; nothing is downloaded at test time). The page must show the same
top class that `e2e.load(run).predict` gives for the uploaded image, and the server must
keep answering after refusing bad uploads (413 / 415 / 400).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import free_port, serve_process
from PIL import Image

import e2e
from e2e.cli import main
from e2e.engine.checkpoint import load_checkpoint, save_checkpoint

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serve") / "digits"
    e2e.train("vision", data="digits", out=out, quiet=True,
              overrides=["train.epochs=3", "train.batch_size=64", "model.widths=[8,16]"])
    return out


@pytest.fixture(scope="module")
def digit_png(run) -> Path:
    """A real test-split digit, saved as a PNG the way a user would upload it."""
    model = e2e.load(run)
    x = model.task.build_data(model.cfg).test.tensors["x"][7, 0]
    path = run.parent / "digit.png"
    Image.fromarray(x.numpy()).resize((64, 64)).save(path)
    return path


@contextlib.contextmanager
def serving(*runs: Path, backend: str = "torch"):
    """`e2e serve RUN...` in its own process; yields its URL once /healthz answers."""
    with serve_process(*map(str, runs), "--backend", backend) as (url, _):
        yield url


@pytest.fixture(scope="module")
def server(run):
    with serving(run) as url:
        yield url


needs_chromium = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian chromium "
                                    "and chromium-driver (bash setup.sh installs them)")


@contextlib.contextmanager
def chromium(profile: Path):
    """Debian's headless chromium, driven by Selenium through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions",
                 "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def post(url: str, fields: dict[str, tuple[str, bytes, str]]) -> tuple[int, dict]:
    """multipart/form-data POST of (filename, content, content type) per field."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, (filename, content, ctype) in fields.items():
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                 f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode()
        body += content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def expected_top(run: Path, image: Path) -> str:
    return e2e.load(run).predict([str(image)], top_k=5)[0][0][0]


def test_http_answers_refuses_bad_uploads_and_keeps_serving(run, server, digit_png):
    api = f"{server}/api/{run.name}"
    png = digit_png.read_bytes()
    status, body = post(api, {"file": ("d.png", png, "image/png")})
    assert status == 200 and body["answer"]["top"][0]["label"] == expected_top(run, digit_png)
    assert len(body["answer"]["top"]) == 5

    status, body = post(api, {"file": ("d.txt", b"hello", "text/plain")})
    assert status == 415 and "text/plain" in body["error"]
    status, body = post(api, {"file": ("big.png", b"\0" * (2 * 2**20 + 1), "image/png")})
    assert status == 413 and "2 MB" in body["error"]
    status, body = post(api, {"file": ("broken.png", png[:40], "image/png")})
    assert status == 400 and "broken.png is not a readable" in body["error"]
    status, body = post(f"{server}/api/nope", {"file": ("d.png", png, "image/png")})
    assert status == 404 and run.name in body["error"]

    status, body = post(api, {"file": ("d.png", png, "image/png")})  # still serving
    assert status == 200 and body["answer"]["top"][0]["label"] == expected_top(run, digit_png)


@needs_chromium
def test_browser_uploads_and_draws(run, server, digit_png, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium(tmp_path / "chrome") as driver:
        wait = WebDriverWait(driver, 30)
        driver.get(server + "/")
        driver.find_element(By.LINK_TEXT, run.name).click()
        wait.until(ec.presence_of_element_located((By.ID, "demo-form")))
        assert "Classes: 0, 1, 2" in driver.page_source

        # upload a real digit: the page shows the model's answer
        driver.find_element(By.ID, "file").send_keys(str(digit_png))
        driver.find_element(By.ID, "predict").click()
        label = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#answer .label")))
        assert label.text == expected_top(run, digit_png)
        assert len(driver.find_elements(By.CSS_SELECTOR, "#answer .bar")) == 5

        # a bad upload: a clear message on the page, and the page keeps working
        bad = tmp_path / "notes.txt"
        bad.write_text("not an image")
        driver.find_element(By.ID, "file").send_keys(str(bad))
        driver.find_element(By.ID, "predict").click()
        error = wait.until(ec.visibility_of_element_located((By.ID, "error")))
        assert "415" in error.text and "unsupported file type" in error.text

        # draw on the pad (no file chosen): the drawing is classified
        driver.get(f"{server}/m/{run.name}")
        canvas = wait.until(ec.presence_of_element_located((By.ID, "canvas")))
        ActionChains(driver).move_to_element_with_offset(canvas, -40, -60).click_and_hold() \
            .move_by_offset(60, 0).move_by_offset(-50, 120).release().perform()
        driver.find_element(By.ID, "predict").click()
        bars = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#answer .bar")))
        assert bars.find_element(By.CSS_SELECTOR, ".label").text in [str(i) for i in range(10)]


def e2e_cli(capsys, *args: str) -> tuple[int, str]:
    """The CLI in this process (its errors are the same; no interpreter start-up)."""
    code = main(list(args))
    return code, capsys.readouterr().err


def test_port_in_use_is_reported(run, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, err = e2e_cli(capsys, "serve", str(run), "--port", str(port))
    assert code == 1 and f"port {port} on 127.0.0.1 is already in use" in err


def test_foreign_and_old_runs_are_refused(run, tmp_path, capsys):
    foreign = tmp_path / "lightning_logs"
    foreign.mkdir()
    (foreign / "config.yaml").write_text("trainer:\n  max_epochs: 3\nmodel:\n  lr: 0.1\n")
    for command in (["serve", str(foreign), "--port", str(free_port())],
                    ["export", str(foreign)]):
        code, err = e2e_cli(capsys, *command)
        assert code == 1 and "unknown section(s) ['trainer']" in err

    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / "model.safetensors").unlink()  # an older layout: weights without the data info
    ckpt = load_checkpoint(old / "checkpoints" / "last.pt")
    save_checkpoint({"model": ckpt["model"], "step": 1}, old / "checkpoints" / "best.pt")
    for command in (["serve", str(old), "--port", str(free_port())], ["export", str(old)]):
        code, err = e2e_cli(capsys, *command)
        assert code == 1 and "older or foreign format" in err

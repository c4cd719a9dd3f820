"""`e2e serve` in a real headless browser beyond vision: the text page (type a sentence, read
the translation) and the speech page (upload a WAV, read the transcript), each on a tiny
run trained here. The page must show what `e2e.load(run).predict` gives for the same input.
The text page is also served from the ONNX export (`--backend onnx`, marked slow)."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf
from test_serve import chromium, needs_chromium, serving
from test_text import TINY, write_copy_tsv

import e2e
from e2e.data.audio import read_manifest
from e2e.export import export_run
from e2e.tasks.speech.synth import build_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


def ask(driver, url: str, name: str, fill) -> tuple[str, str]:
    """Open the page of model NAME, give it an input with `fill(driver)`, submit, and return
    the answer's text and its note as the page shows them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 60)
    driver.get(url + "/")
    driver.find_element(By.LINK_TEXT, name).click()
    wait.until(ec.presence_of_element_located((By.ID, "demo-form")))
    fill(driver)
    driver.find_element(By.ID, "predict").click()
    text = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#answer pre.text")))
    notes = driver.find_elements(By.CSS_SELECTOR, "#answer p.muted")
    assert not driver.find_element(By.ID, "error").is_displayed()
    # textContent, not .text: the transcript may be blank, which .text would not show
    return text.get_attribute("textContent"), notes[0].text if notes else ""


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A tiny copy-task model, trained just long enough to answer with words (~10 s)."""
    root = tmp_path_factory.mktemp("serve-text")
    e2e.train("text", data=str(write_copy_tsv(root / "copy.tsv")), out=root / "copy",
              overrides=[*TINY, "train.max_steps=120", "train.eval_every=120"], quiet=True)
    return root / "copy"


@needs_chromium
@pytest.mark.parametrize("backend", ["torch", pytest.param("onnx", marks=pytest.mark.slow)])
def test_text_page_shows_the_models_translation(text_run, backend, tmp_path):
    from selenium.webdriver.common.by import By

    sentence = "moon cat red fish"
    expected = e2e.load(text_run).predict([sentence])[0]
    assert expected  # the model answers with words, so the page has text to show
    if backend == "onnx":
        export_run(text_run, ["onnx"], quiet=True)

    def type_sentence(driver):
        assert "English text to translate" in driver.page_source
        driver.find_element(By.ID, "text").send_keys(sentence)

    with serving(text_run, backend=backend) as url, chromium(tmp_path / "chrome") as driver:
        shown, _ = ask(driver, url, text_run.name, type_sentence)
    assert shown == expected


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory):
    """A tiny digits model on a tiny espeak-ng corpus (the recipe of test_speech), trained
    for 2 steps only: still wrong, but not yet in CTC's all-blank phase, so it says something."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (bash setup.sh installs it)")
    root = tmp_path_factory.mktemp("serve-speech")
    build_corpus(root / "corpus", 24, 4, 4, workers=1, kinds=("digits",), quiet=True)
    e2e.train("speech", out=root / "digits", quiet=True, overrides=[
        f"data.corpus={root / 'corpus'}", "data.n=24", "data.n_val=4", "data.n_test=4",
        "data.kinds=digits", "data.asterisk=false", "data.augment.enabled=false",
        "data.real=", "data.flite=0", "model.subsample=2", "model.dim=64",
        "model.layers=2", "model.filters=40", "model.beam_size=4", "train.max_steps=2",
        "train.batch_size=8", "train.eval_every=2", "train.lr=3e-3"])
    return root / "digits", read_manifest(root / "corpus/test_digits.tsv")[0].path


@needs_chromium
def test_speech_page_shows_the_models_transcript(speech_run, tmp_path):
    from selenium.webdriver.common.by import By

    run, wav = speech_run
    expected = e2e.load(run).predict([str(wav)])[0]["text"]
    assert expected  # a transcript to look for on the page
    seconds = sf.info(str(wav)).duration

    def upload(driver):
        driver.find_element(By.ID, "file").send_keys(str(wav))

    with serving(run) as url, chromium(tmp_path / "chrome") as driver:
        shown, note = ask(driver, url, run.name, upload)
    assert shown == expected, (shown, expected)
    assert note.startswith(f"{seconds:.1f} s of audio, real-time factor")

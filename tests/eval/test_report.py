"""The HTML report, opened in real headless Chromium (Debian's chromium + chromium-driver): every
figure renders with a non-zero size, the page logs no console errors, and a screenshot is kept."""

import json
import shutil
from pathlib import Path

import pytest

from rewardlab.cli import main
from tests.conftest import PAIRS, write_jsonl


def _browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("Debian's chromium and chromium-driver are not installed (make test installs them as root)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1100,1400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_report_renders_every_figure_in_chromium(tiny_bert, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rows = [dict(p, subset=s) for p, s in zip(PAIRS * 3, "abcabcabcabc")]
    data, model = write_jsonl(tmp_path / "p.jsonl", rows), str(tmp_path / "m")
    assert main(["train", "--model", tiny_bert, "--data", data, "--output", model, "--max-steps", "2"]) == 0
    report = tmp_path / "report.html"
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", data, "--report", str(report), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    page = report.read_text()
    assert "http" not in page.replace("http-equiv", "")  # self-contained: nothing fetched
    # per-subset bars, reward distributions, reliability diagram, length bias, reward against length
    assert page.count("<img") == 5
    text = _open(report, tmp_path, "report.png")  # every figure drawn, no console error, a screenshot
    assert "Worst mistakes" in text and f"{metrics['accuracy']:.4f}" in text
    assert Path(tmp_path / "report.png").stat().st_size > 10000


def _open(report: Path, tmp_path: Path, name: str):
    browser = _browser()
    try:
        browser.get(report.as_uri())
        sizes = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]);")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        browser.save_screenshot(str(tmp_path / name))
        text = browser.find_element("tag name", "body").text
    finally:
        browser.quit()
    assert sizes and all(done and w > 0 and h > 0 for done, w, h in sizes), sizes
    assert not errors, errors
    return text


def test_process_and_outcome_model_reports(tiny_llama, tmp_path):
    """A PRM's report draws every solution step by step, coloured by score, the first labelled
    error marked; an ORM's report has the reliability diagram against its labels."""
    pytest.importorskip("matplotlib")
    prm_rows = [{"prompt": f"Q{i}: 2+3?", "steps": ["Add them.", f"It is {5 + i % 2}.", "Done."],
                 "labels": [True, i % 2 == 0, i % 2 == 0]} for i in range(8)]
    orm_rows = [{"prompt": f"Q{i // 2}: 2+3?", "completion": f" It is {5 + i % 2}.", "label": int(i % 2 == 0)}
                for i in range(8)]
    texts = {}
    for kind, rows in (("prm", prm_rows), ("orm", orm_rows)):
        data, model = write_jsonl(tmp_path / f"{kind}.jsonl", rows), str(tmp_path / kind)
        assert main(["train", "--model", tiny_llama, "--kind", kind, "--data", data, "--output", model,
                     "--max-steps", "2"]) == 0
        report = tmp_path / f"{kind}.html"
        assert main(["eval", "--model", model, "--data", data, "--report", str(report)]) == 0
        page = report.read_text()
        assert "http" not in page.replace("http-equiv", "")
        texts[kind] = (page, report)
    page, report = texts["prm"]
    assert page.count("class=step") == (4 + 2) * 3 and page.count("first labelled error") == 4  # 4 wrong, 2 right shown
    assert "Calibration against the labels" in texts["orm"][0] and "Best-of-N" in texts["orm"][0]
    for kind, (_, report) in texts.items():
        _open(report, tmp_path, f"{kind}.png")


def test_several_models_side_by_side(tiny_bert, tmp_path):
    pytest.importorskip("matplotlib")
    data = write_jsonl(tmp_path / "p.jsonl", PAIRS * 3)
    models = []
    for steps in ("1", "3"):
        models.append(str(tmp_path / f"m{steps}"))
        assert main(["train", "--model", tiny_bert, "--data", data, "--output", models[-1], "--max-steps", steps]) == 0
    report = tmp_path / "board.html"
    assert main(["eval", "--model", models[0], "--model", models[1], "--data", data, "--report", str(report)]) == 0
    page = report.read_text()
    assert "Leaderboard" in page and page.count("<tr>") >= 4 and "paired bootstrap" in page
    _open(report, tmp_path, "board.png")

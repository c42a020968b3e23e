"""The simulator's plots and one-page HTML report: the PNGs are drawn and
embedded, the page works without matplotlib (tables only, and it says how to
get the plots), the core never imports matplotlib, and the page opens in a
real browser (Debian's headless chromium) and shows its plots."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from coinecon.__main__ import main
from coinecon.adapters.memory import MemoryStore
from coinecon.definitions import load
from coinecon.simulation import compare, loads_population, report, simulate
from coinecon.simulation._report import differences_scale

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_PLOTS = ("revenue.png", "packages.png", "creators.png")
COMPARISON_PLOTS = ("differences.png", "revenue.png", "packages.png")
HINT = 'pip install "coinecon[sim]"'

# The example population, smaller: quick, and still two currencies, every
# package and a spread of creators.
SMALL = (
    (EXAMPLES / "population.toml")
    .read_text(encoding="utf-8")
    .replace("viewers = 2000", "viewers = 300")
    .replace("count = 50", "count = 20")
)


def needed(what: str, reason: str) -> None:
    """Skip for want of *what*, unless on CI (the env var CI set), where it fails."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing on CI: {reason}")
    pytest.skip(f"{what} is missing: {reason}")


def needs_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401, ICN001, PLC0415
    except ImportError:
        needed("matplotlib", 'the plots need it: pip install "coinecon[sim]"')


def png_size(data: bytes) -> tuple[int, int]:
    """The width and height of a PNG (its IHDR chunk), after checking its magic."""
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def embedded(page: str) -> dict[str, bytes]:
    """The images *page* embeds as data URIs, by their alt text (the PNG's name)."""
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', page)
    return {name: base64.b64decode(data) for data, name in found}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    result = simulate(
        load(EXAMPLES / "economy.toml"),
        loads_population(SMALL),
        days=5,
        seed=3,
        store=MemoryStore(),
        out=out,
    )
    assert result.verified, result.problems
    return out


@pytest.fixture(scope="module")
def comparison_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ab")
    compare(
        load(EXAMPLES / "economy.toml"),
        load(EXAMPLES / "economy_bonus.toml"),
        loads_population(SMALL),
        days=4,
        seeds=[1, 2],
        stores=MemoryStore,
        out=out,
    )
    return out


def outputs_only(source: Path, target: Path) -> Path:
    """A copy of *source*'s CSV and JSON outputs (and its runs), without any report."""
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("*.png", "*.html"), dirs_exist_ok=True
    )
    return target


def test_a_run_reports_its_plots_and_embeds_each_of_them(run_folder: Path, tmp_path: Path) -> None:
    needs_matplotlib()
    folder = outputs_only(run_folder, tmp_path / "run")
    page_path = report(folder)
    assert page_path == folder / "report.html"
    for name in RUN_PLOTS:
        data = (folder / name).read_bytes()
        width, height = png_size(data)
        assert width > 300 and height > 200, name
    page = page_path.read_text(encoding="utf-8")
    images = embedded(page)
    assert sorted(images) == sorted(RUN_PLOTS)
    for name, data in images.items():
        assert data == (folder / name).read_bytes(), name
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)  # nothing fetched
    assert "verify: the books are clean" in page
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    for key in ("USD.gross", "USD.deferred_revenue", "GBP.net"):
        assert f">{summary['totals'][key]}<" in page, key
    assert summary["creator_gini"] in page
    assert HINT not in html.unescape(page)


def test_the_summary_lists_every_creators_earnings(run_folder: Path) -> None:
    summary = json.loads((run_folder / "summary.json").read_text(encoding="utf-8"))
    earnings = summary["creator_earnings"]
    assert len(earnings) == summary["creators"] == 20
    assert earnings == sorted(earnings)
    assert sum(earnings) == summary["creator_units_earned"] > 0


def test_a_comparison_reports_its_differences(comparison_folder: Path, tmp_path: Path) -> None:
    needs_matplotlib()
    folder = outputs_only(comparison_folder, tmp_path / "ab")
    page_path = report(folder)
    assert page_path == folder / "report.html"
    for name in COMPARISON_PLOTS:
        png_size((folder / name).read_bytes())
    page = page_path.read_text(encoding="utf-8")
    assert sorted(embedded(page)) == sorted(COMPARISON_PLOTS)
    assert "verify: the books are clean (all 4 runs)" in page
    assert "<td>USD.gross</td>" in page
    assert "<script" not in page.lower()
    assert not (folder / "a" / "seed-1" / "report.html").exists()  # one page, the comparison's


def test_a_folder_without_outputs_has_no_report(tmp_path: Path) -> None:
    assert report(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_the_report_holds_the_tables_and_says_how_to_get_plots(
    run_folder: Path, comparison_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    for source, name in ((run_folder, "run"), (comparison_folder, "ab")):
        folder = outputs_only(source, tmp_path / name)
        page_path = report(folder)
        assert page_path == folder / "report.html"
        page = page_path.read_text(encoding="utf-8")
        assert "<img" not in page
        assert HINT in html.unescape(page)
        assert "verify: the books are clean" in page
        assert "<table>" in page
        assert not list(folder.glob("*.png"))


def test_the_command_says_how_to_get_the_plots_without_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    population = tmp_path / "population.toml"
    population.write_text(SMALL, encoding="utf-8")
    out = tmp_path / "run"
    status = main(
        [
            "simulate",
            str(EXAMPLES / "economy.toml"),
            "--population",
            str(population),
            "--days",
            "2",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert f"report: {out / 'report.html'}" in printed
    hints = [line for line in printed.splitlines() if HINT in line]
    assert len(hints) == 1, printed
    assert (out / "report.html").exists()
    assert not list(out.glob("*.png"))


def test_the_command_writes_the_report_after_a_run_and_a_comparison(tmp_path: Path) -> None:
    needs_matplotlib()
    population = tmp_path / "population.toml"
    population.write_text(SMALL, encoding="utf-8")
    common = ["--population", str(population), "--days", "2"]
    economy = str(EXAMPLES / "economy.toml")
    for extra, folder, plots in (
        ([], tmp_path / "run", RUN_PLOTS),
        (
            ["--compare", str(EXAMPLES / "economy_bonus.toml"), "--seeds", "2"],
            tmp_path / "ab",
            None,
        ),
    ):
        done = subprocess.run(  # noqa: S603 (our own interpreter and module)
            [
                sys.executable,
                "-m",
                "coinecon",
                "simulate",
                economy,
                *common,
                *extra,
                "--out",
                str(folder),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert f"report: {folder / 'report.html'}" in done.stdout
        assert HINT not in done.stdout
        for name in plots or COMPARISON_PLOTS:
            png_size((folder / name).read_bytes())


def test_importing_the_simulator_does_not_import_matplotlib() -> None:
    probe = (
        "import sys, coinecon, coinecon.simulation, coinecon.__main__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    done = subprocess.run(  # noqa: S603 (our own interpreter)
        [
            sys.executable,
            "-c",
            probe,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]"


# -- the page in a real browser ------------------------------------------------------------


def screenshot(chromium: str, page: Path, shot: Path, profile: Path) -> bytes:
    """A 1200 x 2000 screenshot of *page* in headless chromium."""
    done = subprocess.run(  # noqa: S603 (a browser we found on PATH, on our own file)
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert shot.exists(), f"chromium wrote no screenshot ({done.returncode}): {done.stderr[-2000:]}"
    return shot.read_bytes()


def pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decode an 8-bit RGB or RGBA PNG; its width, height and pixels (row by row)."""
    from PIL import Image  # noqa: PLC0415 (pillow comes with matplotlib)

    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        raw = rgb.tobytes()
    return width, height, list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))


def test_the_report_opens_in_a_browser_and_shows_its_plots(
    run_folder: Path, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if chromium is None:
        needed("chromium", "install it with: apt-get install chromium")
    assert chromium is not None
    needs_matplotlib()
    folder = outputs_only(run_folder, tmp_path / "run")
    page_path = report(folder)
    assert page_path is not None
    # The same page with its images taken out: what it looks like if none loaded.
    bare = folder / "bare.html"
    text = page_path.read_text(encoding="utf-8")
    bare.write_text(re.sub(r"<img [^>]*>", "", text), encoding="utf-8")
    assert text.count("<img ") == len(RUN_PLOTS) and "<img " not in bare.read_text("utf-8")

    shown = screenshot(chromium, page_path, tmp_path / "report.png", tmp_path / "profile")
    without = screenshot(chromium, bare, tmp_path / "bare.png", tmp_path / "profile")
    assert png_size(shown) == png_size(without) == (1200, 2000)

    width, height, report_pixels = pixels(shown)
    _, _, bare_pixels = pixels(without)
    white = (255, 255, 255)
    inked = sum(1 for pixel in report_pixels if pixel != white)
    bare_inked = sum(1 for pixel in bare_pixels if pixel != white)
    assert bare_inked > 0.005 * width * height  # the tables and the verdict are drawn
    assert inked > 0.05 * width * height, "the report's screenshot is (nearly) blank"
    # The plots: far more ink than the page without them, and in their colours.
    assert inked > 2 * bare_inked
    differing = sum(1 for a, b in zip(report_pixels, bare_pixels, strict=True) if a != b)
    assert differing > 0.05 * width * height, "the images did not load"
    # matplotlib's default blue ("tab:blue", #1f77b4) draws the gross revenue
    # lines and the package bars; the page without plots has none of it.
    blue = sum(1 for r, g, b in report_pixels if abs(r - 31) + abs(g - 119) + abs(b - 180) < 30)
    assert blue > 500
    assert not any(abs(r - 31) + abs(g - 119) + abs(b - 180) < 30 for r, g, b in bare_pixels)


def test_a_difference_far_off_scale_does_not_flatten_the_others() -> None:
    real = [(13.0, 1.5, True), (-3.0, 2.0, True)]
    assert differences_scale([*real, (-341.0, 482.0, False)]) == pytest.approx(1.15 * 14.5)
    assert differences_scale([(2.0, 1.0, True), (50.0, 5.0, False)]) == pytest.approx(11.5)
    assert differences_scale([]) == pytest.approx(11.5)

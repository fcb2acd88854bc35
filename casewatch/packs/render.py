"""HTML with Jinja2, charts with matplotlib (SVG, embedded with alt text), PDF by a headless
Chromium print (Debian ``chromium``), page count with ``pdfinfo`` (Debian ``poppler-utils``)."""
from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import jinja2
from casewatch.packs.exceptions import RenderError  # noqa: F401 - also importable from here

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.globals["stylesheet"] = lambda name: (TEMPLATES / name).read_text(encoding="utf-8")
    return env


def render_html(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


# -- charts -------------------------------------------------------------------------------------
def line_chart(labels: list[str], values: list[float | None], *, percent: bool, width: float = 2.2,
               height: float = 0.8, reference: float | None = None, axes: bool = False) -> str:
    """A small black-and-white trend line as an SVG data URI; None values are gaps."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    scale = 100.0 if percent else 1.0
    ys = [None if v is None else v * scale for v in values]
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    xs = list(range(len(labels)))
    ax.plot(xs, [float("nan") if y is None else y for y in ys], color="black", linewidth=1.2,
            marker="o", markersize=2.5)
    if reference is not None:
        ax.axhline(reference * scale, color="black", linewidth=0.7, linestyle=(0, (3, 2)))
    if axes:
        ax.set_xticks(xs)
        ax.set_xticklabels([lbl.replace("-", "\n") for lbl in labels], fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
        if percent:
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.0f}%"))
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    else:
        ax.set_axis_off()
    fig.tight_layout(pad=0.2)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", transparent=True)
    plt.close(fig)
    svg = re.sub(r"<metadata>.*?</metadata>", "", buf.getvalue(), flags=re.S)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


# -- PDF ----------------------------------------------------------------------------------------
def chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise RenderError("no Chromium to print the PDF with: install the Debian package `chromium` "
                      "(`./dev test` and `casewatch stack up` install it) or pass --no-pdf")


def print_pdf(html_file: Path, pdf_file: Path, timeout: float = 120.0) -> None:
    html_file, pdf_file = Path(html_file).resolve(), Path(pdf_file).resolve()
    with tempfile.TemporaryDirectory(prefix="casewatch-chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--disable-extensions", "--no-first-run",
               "--disable-features=Translate,MediaRouter,OptimizationHints",
               "--metrics-recording-only", "--no-default-browser-check", f"--user-data-dir={profile}",
               "--no-pdf-header-footer", f"--print-to-pdf={pdf_file}", html_file.as_uri()]
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not pdf_file.exists() or pdf_file.stat().st_size == 0:
        raise RenderError(f"Chromium could not print {html_file.name} (exit {done.returncode}); "
                          f"run it by hand to see why: {' '.join(cmd[:3])} ...")


def page_count(pdf_file: Path) -> int | None:
    if shutil.which("pdfinfo") is None:
        return None
    out = subprocess.run(["pdfinfo", str(pdf_file)], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"^Pages:\s+(\d+)", out, re.M)
    return int(m.group(1)) if m else None

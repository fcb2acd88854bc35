"""The casewatch image can print the packs: `casewatch report` in the Compose deployment needs the
programs casewatch.packs.render runs (a Chromium for the PDF, pdfinfo for the page count) installed
by the Dockerfile from Debian, before the image drops to its unprivileged user."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_image_installs_chromium_and_poppler_before_dropping_root():
    text = (REPO / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (.*?)(?<!\\)$", text.replace("\\\n", " "), re.M | re.S)
    installs = [r for r in runs if "apt-get install" in r]
    assert installs, "the Dockerfile installs no Debian package"
    packages = set(re.findall(r"[\w.+-]+", installs[0].split("apt-get install", 1)[1].split("&&")[0]))
    assert {"chromium", "poppler-utils"} <= packages, packages
    assert text.index("apt-get install") < text.index("USER ")        # installed as root
    assert "rm -rf /var/lib/apt/lists/*" in installs[0]                # no package lists left in the image

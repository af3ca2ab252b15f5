"""The HTML report as a person sees it: rendered by headless Chromium (Debian's `chromium`, which
scripts/bootstrap.sh installs), screenshot decoded with the standard library, DOM dumped."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from operator import add
from pathlib import Path

import pytest
from test_report import build_run

from cityward.audit.aggregate import aggregate
from cityward.audit.write import write_reports
from cityward.catalog import load_catalog

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTH, HEIGHT = 1280, 2000
HEADER = (0x12, 0x32, 0x4A)
PASSED, FAILED = (0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28)
BACKGROUNDS = {(0xFF, 0xFF, 0xFF), (0xF5, 0xF7, 0xFA)}


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB triplets) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert header, "PNG without IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev, rows = bytes(stride), []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:  # Up
            line = bytearray(map((255).__and__, map(add, line, prev)))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a, c = (line[i - bpp], prev[i - bpp]) if i >= bpp else (0, 0)
                b = prev[i]
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        found = shutil.which("chromium")
        pytest.fail(f"{CHROMIUM} is missing{f' (found {found})' if found else ''}: scripts/bootstrap.sh installs "
                    "Debian's chromium package (apt-get install chromium) for this test", pytrace=False)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    catalog = load_catalog()
    result = aggregate(build_run(), catalog)
    (html,) = write_reports(result, {"html"}, out)
    return html, result.facts, out


def test_screenshot_shows_a_real_page(rendered):
    html, _, out = rendered
    shot = out / "report.png"
    result = chromium(f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", html.as_uri(), profile=out / "profile")
    assert shot.is_file(), f"chromium wrote no screenshot (exit {result.returncode}): {result.stderr[-800:]}"
    width, height, rows = decode_png(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    pixels = Counter(row[x:x + 3] for row in rows[::4] for x in range(0, width * 3, 12))
    total = sum(pixels.values())
    background = sum(n for colour, n in pixels.items() if tuple(colour) in BACKGROUNDS)
    assert len(pixels) > 100, f"only {len(pixels)} colours: the page looks blank"
    assert (total - background) / total > 0.10, "less than 10 % of the page is not background"
    top = Counter(rows[20][x:x + 3] for x in range(0, width * 3, 3))
    assert top[bytes(HEADER)] > width // 2, "the dark header bar is missing"
    assert pixels[bytes(PASSED)] > 20 and pixels[bytes(FAILED)] > 20, "the passed/failed colours are missing"


def test_rendered_dom_has_the_summary_numbers(rendered):
    html, data, out = rendered
    result = chromium("--dump-dom", html.as_uri(), profile=out / "profile-dom")
    assert result.returncode == 0, result.stderr[-800:]
    dom = result.stdout
    summary, cells = data["summary"], data["summary"]["cells"]
    for ident, number in (("sum-hosts", summary["hosts"]), ("sum-reachable", summary["reachable"]),
                          ("sum-passed", cells["passed"]), ("sum-failed", cells["failed"]),
                          ("sum-not-applicable", cells["not_applicable"]), ("sum-skipped", cells["skipped"]),
                          ("sum-unreachable", summary["unreachable"]),
                          ("sum-mandatory-failures", summary["mandatory_failures"])):
        assert f'id="{ident}">{number}<' in dom, f"{ident} should show {number}"
    assert "FAIL: 3 mandatory control(s) failed" in dom
    assert dom.count("<svg") == 2 and 'id="chart-zones"' in dom and 'id="chart-sources"' in dom

"""Rendering text that mixes scripts (kaomoji) with fonts shipped in Python packages, the same on every machine.

Pillow draws a string with one font and does not fall back to another for missing glyphs, so
:class:`FontChain` picks the font of every character separately: the first font of the chain whose character
map (read with fontTools) covers it. The default chain uses only fonts that ship inside PyPI packages:

1. Noto Sans CJK JP Regular (``noto-cjk-sans-jp-regular``, OFL-1.1)
2. Noto Sans (``fontpkg-noto-sans``, OFL-1.1)
3. DejaVu Sans, DejaVu Sans Mono, DejaVu Serif (``matplotlib``'s bundled fonts, Bitstream Vera licence)
4. STIX General and STIX Size One Symbols (``matplotlib``'s bundled fonts, OFL-1.1)

Layout uses Pillow's basic engine (no HarfBuzz / Raqm, which not every Pillow build has), one character at a
time, so the bitmap depends only on the fonts and Pillow's FreeType.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_PACKAGES = ("noto-cjk-sans-jp-regular", "fontpkg-noto-sans", "matplotlib")
_MPL_FONTS = ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf", "STIXGeneral.ttf", "STIXSizOneSymReg.ttf")
INSTALL_HINT = (
    "pip install 'mllm-balance[benchmarks]'  (or: pip install noto-cjk-sans-jp-regular fontpkg-noto-sans matplotlib)"
)


def _package_dir(module: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"The font package '{module}' is not installed: {INSTALL_HINT}") from err
    return Path(mod.__file__).parent


def default_font_files() -> list[Path]:
    """The font files of the default chain, in fallback order."""
    cjk = _package_dir("noto_cjk_sans_jp_regular") / "NotoSansCJKjp-Regular.otf"
    noto = sorted((_package_dir("fontpkg_noto_sans") / "files").glob("NotoSans[[]*.ttf"))
    mpl = _package_dir("matplotlib") / "mpl-data" / "fonts" / "ttf"
    files = [cjk, *noto[:1], *(mpl / name for name in _MPL_FONTS)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not noto:
        raise FileNotFoundError(f"Font files missing from their packages: {missing or 'NotoSans'}. {INSTALL_HINT}")
    return files


def font_versions() -> dict[str, str]:
    """Installed versions of the font packages (part of a benchmark's cache key)."""
    out = {}
    for name in FONT_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


class FontChain:
    """Per-character font fallback over a list of font files.

    Args:
        files: Font files in fallback order.
        size: Pixel size at which glyphs are drawn before scaling to the canvas.
    """

    def __init__(self, files: Sequence[str | Path] | None = None, size: int = 64):
        from fontTools.ttLib import TTFont

        self.files = [Path(f) for f in (files if files is not None else default_font_files())]
        self.size = size
        self.cmaps = [frozenset(TTFont(str(f), lazy=True, fontNumber=0).getBestCmap()) for f in self.files]
        basic = ImageFont.Layout.BASIC
        self.fonts = [ImageFont.truetype(str(f), size, layout_engine=basic) for f in self.files]
        ascent, descent = self.fonts[0].getmetrics()
        self.ascent = ascent
        self.line_height = ascent + descent
        self._advance: dict[str, float] = {}

    def font_index(self, char: str) -> int | None:
        """Index of the first font covering ``char``, or None."""
        code = ord(char)
        for i, cmap in enumerate(self.cmaps):
            if code in cmap:
                return i
        return None

    def uncovered(self, text: str) -> list[str]:
        """Characters of ``text`` that no font of the chain covers."""
        return [c for c in dict.fromkeys(text) if self.font_index(c) is None]

    def advance(self, char: str) -> float:
        """Horizontal advance of one character at the reference size."""
        if char not in self._advance:
            index = self.font_index(char)
            self._advance[char] = 0.0 if index is None else float(self.fonts[index].getlength(char))
        return self._advance[char]

    def split_lines(self, text: str, num_lines: int) -> list[str]:
        """Cut ``text`` into ``num_lines`` pieces of about equal width (never inside a character)."""
        widths = [self.advance(c) for c in text]
        total = sum(widths)
        lines, current, acc = [], "", 0.0
        for char, width in zip(text, widths):
            if current and len(lines) < num_lines - 1 and acc + width / 2 > total * (len(lines) + 1) / num_lines:
                lines.append(current)
                current = ""
            current += char
            acc += width
        lines.append(current)
        return lines

    def _draw_lines(self, lines: Sequence[str]) -> Image.Image:
        width = max(1, math.ceil(max(sum(self.advance(c) for c in line) for line in lines)) + self.size)
        height = self.line_height * len(lines) + self.size
        img = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(img)
        for row, line in enumerate(lines):
            x, y = self.size / 2, self.size / 2 + row * self.line_height + self.ascent
            for char in line:
                index = self.font_index(char)
                if index is not None:
                    draw.text((x, y), char, fill=0, font=self.fonts[index], anchor="ls")
                x += self.advance(char)
        return img

    def render(
        self, text: str, canvas: int = 112, margin: float = 0.06, max_lines: int = 4, min_line: float = 0.22
    ) -> Image.Image:
        """Draw ``text`` black on a white ``canvas`` x ``canvas`` RGB image.

        The text is wrapped into the fewest lines (at most ``max_lines``) whose line height, once the block
        is scaled to fit, is at least ``min_line`` of the canvas (else into the number of lines that draws it
        largest). It is then cropped to its ink, scaled (Lanczos) to fit inside the margin and centred.

        Args:
            text: The text; characters no font covers are left blank (check :meth:`uncovered` first).
            canvas: Side of the square output image in pixels.
            margin: Blank border on every side, as a share of ``canvas``.
            max_lines: Most lines to wrap into.
            min_line: Smallest acceptable line height, as a share of ``canvas``.

        Returns:
            An RGB :class:`PIL.Image.Image`.
        """
        inner = canvas * (1.0 - 2 * margin)
        options = []
        for num_lines in range(1, max(1, min(max_lines, len(text))) + 1):
            lines = self.split_lines(text, num_lines)
            width = max(sum(self.advance(c) for c in line) for line in lines) or 1.0
            scale = min(inner / width, inner / (self.line_height * num_lines))
            options.append((lines, scale))
        readable = [lines for lines, scale in options if scale * self.line_height >= min_line * canvas]
        best = readable[0] if readable else max(options, key=lambda o: o[1])[0]
        drawn = self._draw_lines(best)
        out = Image.new("L", (canvas, canvas), 255)
        box = Image.eval(drawn, lambda v: 255 - v).getbbox()
        if box is not None:
            ink = drawn.crop(box)
            fit = min(inner / ink.width, inner / ink.height)
            size = (max(1, round(ink.width * fit)), max(1, round(ink.height * fit)))
            ink = ink.resize(size, Image.Resampling.LANCZOS)
            out.paste(ink, ((canvas - size[0]) // 2, (canvas - size[1]) // 2))
        return out.convert("RGB")


@functools.lru_cache(maxsize=2)
def default_chain(size: int = 64) -> FontChain:
    """The default :class:`FontChain`, loaded once per process."""
    return FontChain(size=size)

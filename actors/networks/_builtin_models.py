"""Built-in models: offline, no downloads, deterministic, and worth watching.

* `echo` (text -> text): returns its input; the no-op of the benchmark.
* `remix` (text -> text): a word-level Markov chain over a small embedded
  corpus, seeded by the input's words, so each output grows out of the last.
* `paint` (text -> image): a 96x96 interference pattern whose palette and
  waves come from the text's words.
* `caption` (image -> text): reads a PNG and describes what is really in it:
  its brightness, colours, contrast and the direction of its structure.

`paint`, `caption`, `remix` in a ring make the demo network. All run in a
model worker thread and take a few milliseconds.
"""

from __future__ import annotations

import colorsys
import hashlib
import itertools
import math
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._models import model
from ._png import decode_png, encode_png

__all__ = ["BUILTINS", "caption", "echo", "paint", "remix"]

_CORPUS = """
the river carries light across the valley and the valley keeps the light for the night
a machine dreams of rivers and the rivers dream of glass towers under a slow green sky
every signal is a small animal crossing the field before the storm arrives at dusk
the storm writes its name on the water and the water forgets it by morning
a lantern in the archive remembers every face that ever looked into the dark
under the bridge the pigeons count the trains and the trains count the years
the garden of wires hums a song about copper moons and patient engines
a violet field opens like a book and every page is a door into the sea
the sea answers in colours no one has named and the names drift home
in the quiet hour the screens glow amber and the city listens to itself
a spiral of birds turns above the harbour and the harbour turns to gold
the old radio speaks of islands made of salt and clocks made of rain
"""

_WORD = re.compile(r"[a-z']+")


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _chain() -> dict[str, list[str]]:
    words = _WORD.findall(_CORPUS)
    out: dict[str, list[str]] = {}
    for a, b in itertools.pairwise(words):
        out.setdefault(a, []).append(b)
    return out


_CHAIN = _chain()


@model(input="text", output="text")
def echo(text: str) -> str:
    return text


@model(input="text", output="text")
def remix(text: str) -> str:
    rng = random.Random(_seed(text))
    known = [w for w in _WORD.findall(text.lower()) if w in _CHAIN]
    word = rng.choice(known) if known else rng.choice(sorted(_CHAIN))
    out = [word]
    for _ in range(rng.randint(9, 18)):
        follow = _CHAIN.get(word)
        word = rng.choice(follow) if follow else rng.choice(sorted(_CHAIN))
        out.append(word)
    return " ".join(out)


@model(input="text", output="image")
def paint(text: str, size: int = 96) -> bytes:
    rng = random.Random(_seed(text))
    words = _WORD.findall(text.lower()) or ["void"]
    hue = (sum(map(ord, words[0])) % 360) / 360.0
    palette = [
        colorsys.hsv_to_rgb(
            (hue + shift) % 1.0, 0.35 + 0.6 * rng.random(), 0.25 + 0.75 * rng.random()
        )
        for shift in (0.0, 0.33 + 0.2 * rng.random(), 0.5 + 0.3 * rng.random())
    ]
    fx = 0.05 + 0.03 * (len(words) % 7)
    fy = 0.04 + 0.02 * (len(words[-1]) % 9)
    fr = 0.08 + 0.2 * rng.random()
    cx, cy = rng.uniform(0, size), rng.uniform(0, size)
    p1, p2 = rng.uniform(0, math.tau), rng.uniform(0, math.tau)
    rgb = bytearray()
    sin, hyp = math.sin, math.hypot
    for y in range(size):
        for x in range(size):
            v = sin(x * fx + p1) + sin(y * fy + p2) + sin(hyp(x - cx, y - cy) * fr)
            t = (v + 3.0) / 6.0  # 0..1
            a, b = (palette[0], palette[1]) if t < 0.5 else (palette[1], palette[2])
            u = (t * 2.0) % 1.0
            rgb += bytes(int(255 * (a[i] + (b[i] - a[i]) * u)) for i in range(3))
    return encode_png(size, size, bytes(rgb))


_HUES = [
    (0.0, "crimson"),
    (0.06, "ember"),
    (0.11, "amber"),
    (0.16, "golden"),
    (0.25, "moss"),
    (0.36, "green"),
    (0.47, "teal"),
    (0.55, "azure"),
    (0.64, "cobalt"),
    (0.74, "violet"),
    (0.83, "magenta"),
    (0.92, "rose"),
    (1.01, "crimson"),
]


def _hue_name(h: float) -> str:
    return min(_HUES, key=lambda hn: abs(hn[0] - h))[1]


@model(input="image", output="text")
def caption(path: Path) -> str:
    width, height, channels, px = decode_png(path.read_bytes())
    step = max(1, (width * height) // 4096)  # at most ~4k samples, whatever the size
    lum: list[float] = []
    hues: dict[str, float] = {}
    grey = channels == 1
    for i in range(0, width * height, step):
        o = i * channels
        r, g, b = (px[o],) * 3 if grey else (px[o], px[o + 1], px[o + 2])
        h, s, v = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
        lum.append(0.2126 * r + 0.7152 * g + 0.0722 * b)
        if s > 0.15 and v > 0.1:
            hues[_hue_name(h)] = hues.get(_hue_name(h), 0.0) + s * v
    mean = sum(lum) / len(lum)
    spread = math.sqrt(sum((x - mean) ** 2 for x in lum) / len(lum))
    light = "dark" if mean < 70 else "dim" if mean < 120 else "bright" if mean > 180 else "soft"
    texture = "calm" if spread < 25 else "restless" if spread > 60 else "rippling"
    ranked = sorted(hues, key=lambda k: -hues[k])
    main = ranked[0] if ranked else "grey"
    second = ranked[1] if len(ranked) > 1 else "shadow"
    dx, dy = _gradients(width, height, channels, px)
    flow = "vertical bands" if dx > 1.3 * dy else "horizontal bands" if dy > 1.3 * dx else "rings"
    return f"a {light} {main} field, {texture}, with {second} {flow}"


def _gradients(width: int, height: int, channels: int, px: bytes) -> tuple[float, float]:
    """Mean absolute change along x and along y (of the first channel)."""
    dx = dy = 0.0
    n = 0
    stride = width * channels
    for y in range(0, height - 1, max(1, height // 48)):
        for x in range(0, width - 1, max(1, width // 48)):
            o = y * stride + x * channels
            dx += abs(px[o + channels] - px[o])
            dy += abs(px[o + stride] - px[o])
            n += 1
    return (dx / n, dy / n) if n else (0.0, 0.0)


BUILTINS: dict[str, Callable[[Any], Any]] = {
    "echo": echo,
    "remix": remix,
    "paint": paint,
    "caption": caption,
}

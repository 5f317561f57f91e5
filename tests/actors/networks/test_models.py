"""Models: finding them, their declared kinds, what they return, and the PNG codec."""

from __future__ import annotations

import contextlib
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecast.actors import ModelError, model, resolve_model
from pipecast.actors.networks import (
    PNG_SIGNATURE,
    BadImage,
    check_ring,
    decode_png,
    encode_png,
    invoke_model,
)
from pipecast.transport import BadRequest


@model(input="text", output="text")
def shout(text: str) -> str:
    return text.upper()


@model(input="text", output="text")
def returns_bytes(text: str) -> Any:
    return b"not text"


@model(input="text", output="image")
def returns_text_for_image(text: str) -> Any:
    return "not a png"


@model(input="text", output="text")
def raises(text: str) -> str:
    raise RuntimeError("the model broke")


def undeclared(text: str) -> str:
    return text


# -- finding models --------------------------------------------------------------


def test_built_in_models_declare_their_kinds() -> None:
    kinds = {
        n: (resolve_model(n).input_kind, resolve_model(n).output_kind)
        for n in ("echo", "remix", "paint", "caption")
    }
    assert kinds == {
        "echo": ("text", "text"),
        "remix": ("text", "text"),
        "paint": ("text", "image"),
        "caption": ("image", "text"),
    }


def test_a_model_is_found_by_module_and_attribute() -> None:
    m = resolve_model(f"{__name__}:shout")
    assert m.fn("hi") == "HI"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("nosuchmodel", "no model named"),
        ("no.such.module:f", "cannot be loaded"),
        (f"{__name__}:missing", "cannot be loaded"),
        (f"{__name__}:undeclared", "does not declare its kinds"),
        (f"{__name__}:PNG_SIGNATURE", "not callable"),
        ("", "non-empty"),
    ],
)
def test_a_model_that_cannot_be_used_is_refused_with_why(name: str, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        resolve_model(name)


def test_unknown_kinds_cannot_be_declared() -> None:
    with pytest.raises(BadRequest):
        model(input="audio", output="text")


def test_a_ring_must_feed_each_model_what_it_takes() -> None:
    check_ring([resolve_model(n) for n in ("paint", "caption", "remix")])
    check_ring([resolve_model("echo")])
    with pytest.raises(BadRequest, match="makes image"):
        check_ring([resolve_model(n) for n in ("paint", "remix")])
    with pytest.raises(BadRequest, match="must take text"):
        check_ring([resolve_model(n) for n in ("caption", "paint")])


# -- invoking models -------------------------------------------------------------


def test_a_ring_of_built_ins_makes_real_text_and_images(tmp_path: Path) -> None:
    value = "copper rivers at night"
    outputs = []
    for name in ("paint", "caption", "remix", "paint"):
        value = invoke_model(resolve_model(name), value, tmp_path)
        outputs.append(value)
    png, caption, remix, png2 = outputs
    assert Path(png).parent == tmp_path
    assert Path(png).read_bytes().startswith(PNG_SIGNATURE)
    assert decode_png(Path(png).read_bytes())[:3] == (96, 96, 3)
    assert caption.startswith("a ")
    assert "field" in caption
    assert len(remix.split()) >= 10
    assert remix != caption
    assert png2 != png


def test_the_same_image_is_stored_once_under_its_hash(tmp_path: Path) -> None:
    paint = resolve_model("paint")
    a = invoke_model(paint, "same words", tmp_path)
    b = invoke_model(paint, "same words", tmp_path)
    assert a == b
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    ("colour", "word"),
    [((220, 20, 30), "crimson"), ((20, 40, 220), "cobalt"), ((30, 200, 60), "green")],
)
def test_caption_names_the_colour_that_is_really_there(
    tmp_path: Path, colour: tuple[int, int, int], word: str
) -> None:
    path = tmp_path / "solid.png"
    path.write_bytes(encode_png(8, 8, bytes(colour) * 64))
    text = invoke_model(resolve_model("caption"), str(path), tmp_path)
    assert word in text
    assert "calm" in text


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("returns_bytes", "not text"),
        ("returns_text_for_image", "not PNG bytes"),
        ("raises", "RuntimeError: the model broke"),
    ],
)
def test_every_way_a_model_fails_is_a_model_error(tmp_path: Path, name: str, why: str) -> None:
    with pytest.raises(ModelError, match=why):
        invoke_model(resolve_model(f"{__name__}:{name}"), "x", tmp_path)


def test_a_missing_or_broken_input_image_is_a_model_error(tmp_path: Path) -> None:
    caption = resolve_model("caption")
    with pytest.raises(ModelError, match="does not exist"):
        invoke_model(caption, str(tmp_path / "gone.png"), tmp_path)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"GIF89a...")
    with pytest.raises(ModelError, match="not a PNG"):
        invoke_model(caption, str(bad), tmp_path)


# -- the PNG codec ---------------------------------------------------------------


def _filtered_png(width: int, height: int, rgb: bytes, filters: list[int]) -> bytes:
    """A PNG whose rows use the given filter types (the encoder side, for the test)."""
    bpp, stride = 3, width * 3
    rows = [rgb[y * stride : (y + 1) * stride] for y in range(height)]
    raw = bytearray()
    prev = bytes(stride)
    for y, row in enumerate(rows):
        kind = filters[y % len(filters)]
        out = bytearray()
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) >> 1
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out.append((row[i] - pred) & 0xFF)
        raw += bytes([kind]) + out
        prev = row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.data())
def test_png_round_trips_through_every_row_filter(
    width: int, height: int, data: st.DataObject
) -> None:
    rgb = data.draw(st.binary(min_size=width * height * 3, max_size=width * height * 3))
    assert decode_png(encode_png(width, height, rgb)) == (width, height, 3, rgb)
    filters = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=5))
    assert decode_png(_filtered_png(width, height, rgb, filters)) == (width, height, 3, rgb)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_bad_image(data: bytes) -> None:
    for blob in (data, PNG_SIGNATURE + data):
        with contextlib.suppress(BadImage):
            decode_png(blob)


def test_a_truncated_png_is_a_bad_image() -> None:
    png = encode_png(4, 4, bytes(48))
    for cut in (10, 30, len(png) - 20):
        with pytest.raises(BadImage):
            decode_png(png[:cut])


def test_a_model_is_found_by_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real installed distribution (a dist-info on sys.path) registering a model."""
    (tmp_path / "shouting_models.py").write_text(
        "from pipecast.actors import model\n\n"
        "@model(input='text', output='text')\n"
        "def loud(text):\n"
        "    return text.upper() + '!'\n"
    )
    info = tmp_path / "shouting_models-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shouting-models\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pipecast.models]\nloud = shouting_models:loud\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    m = resolve_model("loud")
    assert (m.input_kind, m.output_kind) == ("text", "text")
    assert invoke_model(m, "hey", tmp_path) == "HEY!"

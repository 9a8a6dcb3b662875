"""Anti-aliased rendering of synthetic scenes: draw at ``supersample`` x resolution, box-filter down."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from fsc_clip.data.synthetic.scene import Scene, SceneObject
from fsc_clip.data.synthetic.vocab import Vocab


def object_geometry(obj: SceneObject, vocab: Vocab, image_size: int) -> tuple[float, float, float]:
    """Center ``(x, y)`` and radius of ``obj`` in pixels of the final image."""
    cell = image_size / vocab.grid
    x = (obj.col + 0.5) * cell + obj.jitter[0]
    y = (obj.row + 0.5) * cell + obj.jitter[1]
    radius = vocab.max_radius_fraction * cell * vocab.sizes[obj.size]
    return x, y, radius


def _polygon(shape: str, x: float, y: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":  # equilateral, pointing up, circumradius r (centroid at the center)
        return [(x + r * math.cos(a), y - r * math.sin(a)) for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)]
    if shape == "diamond":
        return [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
    if shape == "cross":  # a plus sign whose arms are 0.7 r thick
        t = 0.35 * r
        return [
            (x - t, y - r), (x + t, y - r), (x + t, y - t), (x + r, y - t), (x + r, y + t), (x + t, y + t),
            (x + t, y + r), (x - t, y + r), (x - t, y + t), (x - r, y + t), (x - r, y - t), (x - t, y - t),
        ]  # fmt: skip
    raise ValueError(f"unknown shape {shape!r}")


def _draw_object(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float, rgb: tuple) -> None:
    if shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=rgb)
    elif shape == "square":  # side 1.6 r: about the area of the circle
        h = 0.8 * r
        draw.rectangle([x - h, y - h, x + h, y + h], fill=rgb)
    else:
        draw.polygon(_polygon(shape, x, y, r), fill=rgb)


def render_scene(scene: Scene, vocab: Vocab, image_size: int = 64, supersample: int = 4) -> Image.Image:
    """Render ``scene`` as an RGB image of ``image_size`` x ``image_size`` pixels."""
    big = image_size * supersample
    img = Image.new("RGB", (big, big), (scene.background,) * 3)
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        x, y, r = object_geometry(obj, vocab, image_size)
        _draw_object(draw, obj.shape, x * supersample, y * supersample, r * supersample, vocab.colors[obj.color])
    if supersample == 1:
        return img
    return img.resize((image_size, image_size), Image.Resampling.BOX)

"""Small generated images for the image pipeline's tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

#: Pillow format -> file suffix.
FORMATS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tiff",
}


def marked(width: int, height: int) -> Image.Image:
    """A grey image with a red block in its top-left corner, to tell orientations apart."""
    image = Image.new("RGB", (width, height), (128, 128, 128))
    image.paste((255, 0, 0), (0, 0, width // 4, height // 4))
    return image


def save_with_orientation(path: Path, image: Image.Image, orientation: int) -> None:
    """Save ``image`` as a JPEG whose EXIF says it must be shown with ``orientation``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, format="JPEG", exif=exif, quality=95)


def make_tree(root: Path, count: int, *, size: tuple[int, int] = (64, 48)) -> list[str]:
    """``count`` small PNGs spread over a few folders; their paths relative to ``root``."""
    made = []
    for number in range(count):
        rel = f"f{number % 3}/img{number:04d}.png"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (number % 256, 80, 160)).save(path)
        made.append(rel)
    return sorted(made)


def is_red(pixel: object) -> bool:
    assert isinstance(pixel, tuple), pixel
    return bool(pixel[0] > 200 and pixel[1] < 80 and pixel[2] < 80)

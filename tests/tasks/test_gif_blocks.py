"""A GIF's frames are counted by walking its blocks, before any pixel is decoded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from service.tasks.gif_blocks import GifStructureError, TooManyFramesError, count_gif_frames
from tests.support.task_images import many_frames_gif, noisy_bytes


@pytest.mark.parametrize("frames", [1, 2, 7])
def test_the_count_is_pillows(frames: int) -> None:
    data = noisy_bytes("GIF", size=(20, 10), frames=frames)
    with Image.open(io.BytesIO(data)) as image:
        assert count_gif_frames(data, max_frames=100) == getattr(image, "n_frames", 1) == frames


def test_a_gif_written_block_by_block_is_one_pillow_decodes() -> None:
    data = many_frames_gif(3)
    with Image.open(io.BytesIO(data)) as image:
        assert getattr(image, "n_frames", 1) == 3
        image.seek(2)
        image.load()
    assert count_gif_frames(data, max_frames=3) == 3


def test_the_walk_stops_at_the_first_frame_past_the_limit() -> None:
    assert count_gif_frames(many_frames_gif(1000), max_frames=1000) == 1000
    with pytest.raises(TooManyFramesError):
        count_gif_frames(many_frames_gif(1001), max_frames=1000)
    # 300,000 frames: refused at frame 1,001 whatever follows (the trailer is never seen).
    with pytest.raises(TooManyFramesError):
        count_gif_frames(many_frames_gif(300_000)[:-1], max_frames=1000)


@pytest.mark.parametrize("kept", [0.3, 0.5, 0.9, 0.99])
def test_a_gif_cut_short_is_a_structure_error(kept: float) -> None:
    data = noisy_bytes("GIF", size=(30, 20), frames=3)
    with pytest.raises(GifStructureError):
        count_gif_frames(data[: int(len(data) * kept)], max_frames=100)


def test_a_missing_trailer_or_a_stray_byte_is_a_structure_error() -> None:
    data = many_frames_gif(2)
    with pytest.raises(GifStructureError, match="trailer"):
        count_gif_frames(data[:-1], max_frames=10)
    with pytest.raises(GifStructureError, match="starts no GIF block"):
        count_gif_frames(data[:-1] + b"\x00\x3b", max_frames=10)
    with pytest.raises(GifStructureError):
        count_gif_frames(b"GIF89a", max_frames=10)

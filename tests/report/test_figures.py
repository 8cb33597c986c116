import numpy as np
import pytest
from matplotlib.image import imread

from kakusan.errors import KakusanError
from kakusan.report import figures


def test_tile_images_places_each_image_in_its_cell():
    imgs = np.stack([np.full((3, 2), k / 10) for k in range(5)])  # n=5, H=3, W=2 (distinct sizes)
    grid = figures.tile_images(imgs, nrow=3, pad=1, pad_value=1.0)
    assert grid.shape == (2 * 4 + 1, 3 * 3 + 1)
    for k in range(5):
        r, c = divmod(k, 3)
        cell = grid[1 + r * 4: 1 + r * 4 + 3, 1 + c * 3: 1 + c * 3 + 2]
        assert np.all(cell == k / 10)


def test_image_grid_writes_a_png(tmp_path):
    path = figures.image_grid(np.random.default_rng(0).random((7, 8, 8)), tmp_path / "g.png", scale=2)
    img = imread(path)
    assert img.shape[0] == 2 * (3 * 9 + 1)


def test_image_grid_rejects_bad_shapes(tmp_path):
    with pytest.raises(KakusanError, match="shape"):
        figures.image_grid(np.zeros((2, 5, 8, 8)), tmp_path / "g.png")


def test_line_contour_scatter_and_heatmap(tmp_path):
    assert figures.line_plot({"a": [3, 2, 1]}, tmp_path / "l.png", hlines={"target": 1.0}).stat().st_size > 0
    own_x = figures.line_plot({"a": [3, 2, 1], "b": [1, 2]}, tmp_path / "x.png", xs={"a": [1, 2, 4], "b": [3, 9]},
                              logx=True, marker="o")
    assert own_x.stat().st_size > 0
    pts = np.random.default_rng(1).normal(size=(50, 2))
    f = figures.density_contour(lambda z: -0.5 * (z ** 2).sum(1), pts, tmp_path / "c.png")
    assert f.stat().st_size > 0
    assert figures.scatter_plot([1, 2], [1, 2.1], tmp_path / "s.png").exists()
    assert figures.heatmap(np.eye(3), tmp_path / "h.png").exists()
    with pytest.raises(KakusanError, match=r"\(n, 2\)"):
        figures.density_contour(lambda z: z[:, 0], np.zeros((4, 3)), tmp_path / "bad.png")

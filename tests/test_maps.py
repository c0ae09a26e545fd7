"""Maps draw from the packaged Natural Earth layers: no download, no warning."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from tokenflow.publish import plotting as tp  # noqa: E402


def test_packaged_layers_present_and_small():
    files = tp.map_layer_files()
    assert len(files) == len(tp.MAP_LAYERS)
    for shp in files:
        for ext in (".shp", ".shx", ".dbf", ".prj"):
            assert shp.with_suffix(ext).is_file(), shp.with_suffix(ext)
    total = sum(p.stat().st_size for p in tp.MAP_DATA_DIR.rglob("*") if p.is_file())
    assert total < 1_000_000  # only the 1:110m layers the maps use


def test_map_draws_offline_without_warnings(tmp_path, monkeypatch):
    cartopy = pytest.importorskip("cartopy")
    # an empty download folder and a downloader that fails loudly if anything is fetched
    monkeypatch.setitem(cartopy.config, "data_dir", str(tmp_path))
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", "")

    def no_download(*args, **kwargs):
        raise AssertionError("map code tried to download Natural Earth data")

    monkeypatch.setattr("urllib.request.urlopen", no_download)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plt.figure(figsize=(4, 3))
        ax, _ = tp.map_axes(fig, 111)
        fig.canvas.draw()  # features load their geometries at draw time
    # land, states, coastline, borders each drew at least one path
    n_features = sum(1 for a in ax.artists + ax.collections if a.__class__.__name__ == "FeatureArtist")
    assert n_features == 4
    assert not any(tmp_path.iterdir())
    assert cartopy.config["pre_existing_data_dir"] == str(tp.MAP_DATA_DIR)
    plt.close(fig)


def test_missing_layer_is_a_clear_error(tmp_path, monkeypatch):
    from tokenflow.core.errors import TokenflowError

    monkeypatch.setattr(tp, "MAP_DATA_DIR", tmp_path)
    with pytest.raises(TokenflowError, match="packaged map data missing"):
        tp.use_packaged_map_data()

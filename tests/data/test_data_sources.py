"""Sources: CSV/TSV/JSONL tables (COCO neg layout), webdataset shard specs, safe negatives parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsc_clip.config import ConfigError
from fsc_clip.data import SOURCES, DataConfig, ShardList, Table, load_source, parse_negative_list
from fsc_clip.data.sources import expand_shards, resolve_source
from fsc_clip.errors import DataNotFoundError


def test_registry_lists_all_sources():
    assert {"csv", "tsv", "jsonl", "webdataset"} <= set(SOURCES.names())


def test_coco_neg_tsv_layout(coco_tsv: Path, image_rows, tmp_path):
    table = load_source(DataConfig(train_data=str(coco_tsv)))
    assert isinstance(table, Table) and len(table) == len(image_rows)
    assert table.paths[3] == str(tmp_path / "images/003.png")
    assert table.captions[3] == image_rows[3]["title"]
    assert table.negatives[3] == {"negclip": image_rows[3]["neg_caption"]}
    assert table.negative_types == ["negclip"]


def test_csv_with_custom_columns_and_image_root(tmp_path, image_rows, dh):
    (tmp_path / "sub").mkdir()
    path = dh.write_csv(tmp_path / "sub" / "t.csv", image_rows)  # images live outside the table's folder
    cfg = DataConfig(train_data=str(path), csv_img_key="image", csv_caption_key="caption", image_root=str(tmp_path))
    table = load_source(cfg)
    assert table.negatives is None
    assert table.paths[0] == str(tmp_path / "images/000.png") and Path(table.paths[0]).is_file()


def test_jsonl_source(tmp_path, image_rows, dh):
    path = dh.write_jsonl(tmp_path / "train.jsonl", image_rows)
    table = load_source(DataConfig(train_data=str(path), csv_img_key="image", csv_caption_key="caption"))
    assert resolve_source(DataConfig(train_data=str(path))) == "jsonl"
    assert list(table.captions) == [r["title"] for r in image_rows]


def test_missing_column_names_flag(coco_tsv):
    with pytest.raises(ConfigError, match="csv_caption_key"):
        load_source(DataConfig(train_data=str(coco_tsv), csv_caption_key="caption"))


def test_missing_file_is_data_not_found(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"nope\.tsv"):
        load_source(DataConfig(train_data=str(tmp_path / "nope.tsv")))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("['a b', \"c's d\"]", ["a b", "c's d"]),
        ('["x", "y"]', ["x", "y"]),
        ("one plain caption", ["one plain caption"]),
        ("", []),
        ("[__import__('os').system('echo pwned')]", []),  # not a literal: never evaluated
        ("['ok', 3, None]", ["ok"]),
        ("[unterminated", []),
    ],
)
def test_parse_negative_list_is_safe(cell, expected):
    assert parse_negative_list(cell) == expected


def test_shard_spec_expansion(tmp_path):
    for name in ["a-0.tar", "a-1.tar", "b-0.tar"]:
        (tmp_path / name).write_bytes(b"")
    spec = f"{tmp_path}/a-{{0..1}}.tar::{tmp_path}/b-0.tar"
    assert expand_shards(spec) == [str(tmp_path / n) for n in ["a-0.tar", "a-1.tar", "b-0.tar"]]
    cfg = DataConfig(train_data=spec)
    assert resolve_source(cfg) == "webdataset"
    assert isinstance(load_source(cfg), ShardList)
    assert expand_shards(str(tmp_path)) == sorted(str(p) for p in tmp_path.glob("*.tar"))


def test_missing_shards(tmp_path):
    with pytest.raises(DataNotFoundError, match="shards"):
        load_source(DataConfig(train_data=f"{tmp_path}/x-{{0..3}}.tar"))


def test_unknown_suffix_asks_for_source(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.source"):
        load_source(DataConfig(train_data=str(tmp_path / "data.parquet")))


def test_packed_strings_roundtrip():
    from fsc_clip.data.sources import PackedNegatives, PackedStrings

    items = ["a dog", "", "café ünïcode ✓", "x" * 1000]
    packed = PackedStrings(items)
    assert len(packed) == 4 and list(packed) == items and packed[-1] == items[-1]
    with pytest.raises(IndexError):
        packed[4]
    negs = PackedNegatives([{"negclip": ["b", "c"]}, None])
    assert negs[0] == {"negclip": ["b", "c"]} and negs[1] is None


def test_list_sources_cli(capsys):
    from fsc_clip.cli.main import main

    assert main(["list", "sources"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("csv", "tsv", "jsonl", "webdataset"))


def test_data_config_from_yaml_values():
    from fsc_clip.config import from_dict

    cfg = from_dict(DataConfig, {"train_data": "x.tsv", "csv-separator": "\\t", "workers": "2", "negatives": "none"})
    assert cfg.csv_separator == "\t" and cfg.workers == 2 and cfg.negatives is None
    for bad in ({"workers": -1}, {"on_bad_sample": "ignore"}, {"source": "parquet"}, {"csv_separator": ";;"}):
        with pytest.raises(ConfigError):
            from_dict(DataConfig, bad)


def test_tab_separator_on_csv_named_file(tmp_path, image_rows, dh):
    path = dh.write_coco_neg_tsv(tmp_path / "coco.csv", image_rows)  # open_clip style: --csv-separator "\t"
    table = load_source(DataConfig(train_data=str(path), csv_separator="\t"))
    assert len(table) == len(image_rows) and table.negative_types == ["negclip"]

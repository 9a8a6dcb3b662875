from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from fsc_clip.config import ConfigError, apply_overrides, from_dict, load_config, parse_override, to_dict


@dataclass
class Inner:
    lr: float = 1e-3
    schedule: Literal["cosine", "const"] = "cosine"
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError("lr must be positive")


@dataclass
class Outer:
    name: str = "run"
    epochs: int = 1
    amp: bool = False
    path: Path | None = None
    optim: Inner = field(default_factory=Inner)


def test_from_dict_nested_and_coercion():
    cfg = from_dict(Outer, {"name": "x", "epochs": "3", "amp": "true", "path": "/tmp/a", "optim": {"lr": "5e-6"}})
    assert cfg.epochs == 3 and cfg.amp is True and cfg.path == Path("/tmp/a") and cfg.optim.lr == 5e-6
    assert to_dict(cfg)["optim"] == {"lr": 5e-6, "schedule": "cosine", "names": []}


def test_unknown_key_suggests_close_match():
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        from_dict(Outer, {"optim": {"lrr": 1}})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"epochs": "two"}, "expected an integer"),
        ({"amp": "maybe"}, "expected true/false"),
        ({"optim": {"schedule": "linear"}}, "not one of"),
        ({"optim": {"lr": -1}}, "lr must be positive"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_overrides_parse_yaml_values():
    assert parse_override("optim.lr=1e-4") == (["optim", "lr"], 1e-4)
    assert parse_override("optim.names=[a, b]") == (["optim", "names"], ["a", "b"])
    assert parse_override("amp=true") == (["amp"], True)
    out = apply_overrides({"optim": {"lr": 1}}, ["optim.lr=2", "new.deep.key=x"])
    assert out == {"optim": {"lr": 2}, "new": {"deep": {"key": "x"}}}
    with pytest.raises(ConfigError):
        parse_override("no_equals_sign")


def test_load_config_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: base\noptim:\n  lr: 0.1\n")
    cfg = load_config(Outer, path, ["optim.lr=0.5", "epochs=2"])
    assert (cfg.name, cfg.epochs, cfg.optim.lr) == ("base", 2, 0.5)
    path.write_text("name: base\noptim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(Outer, path)

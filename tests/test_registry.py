import pytest

from fsc_clip.registry import Registry, UnknownNameError


def test_register_get_list_and_close_match_error():
    reg: Registry = Registry("widget")

    @reg.register("sugar_crepe")
    def make():
        return 1

    reg.register("aro", lambda: 2)
    assert reg.get("sugar_crepe") is make
    assert reg.names() == ["aro", "sugar_crepe"]
    assert "aro" in reg and "nope" not in reg
    with pytest.raises(UnknownNameError) as err:
        reg.get("sugarcrepe")
    assert "Did you mean: sugar_crepe" in str(err.value)
    assert "Available: aro, sugar_crepe" in str(err.value)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("aro", lambda: 3)


def test_lazy_modules_are_imported_on_first_lookup():
    reg: Registry = Registry("thing", lazy_modules=("fsc_clip.errors",))
    assert not reg._loaded
    assert reg.names() == []
    assert reg._loaded

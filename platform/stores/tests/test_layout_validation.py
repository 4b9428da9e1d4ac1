"""Layout documents are checked whole, every problem with its path — pure, no database."""

from __future__ import annotations

import copy

import pytest

from stores.layout import validate_layout
from stores.sample import sample_layout

SKUS = [f"SKU-{n:03d}" for n in range(1, 41)]


@pytest.fixture
def document() -> dict:
    return sample_layout(skus=SKUS)


def _problems(document: object) -> dict[str, str]:
    return {p.path: p.message for p in validate_layout(document, known_skus=set(SKUS))}


def test_the_sample_layout_is_valid_and_realistic(document: dict) -> None:
    assert _problems(document) == {}
    bins = [b for f in document["fixtures"] for b in f["bins"]]
    kinds = [d["kind"] for d in document["devices"]]
    assert len(document["zones"]) >= 3
    assert len(document["fixtures"]) >= 10
    assert len(bins) >= 100
    assert kinds.count("camera") >= 4
    assert kinds.count("gate") >= 2
    assert 0 < sum(1 for b in bins if "sensor" in b) < len(bins)


def test_the_spec_example_is_valid() -> None:
    example = {
        "floor": {"width_m": 20.0, "depth_m": 12.0},
        "zones": [{"code": "Z-DRINKS", "name": "Drinks", "polygon": [[0, 0], [5, 0], [5, 4], [0, 4]]}],
        "fixtures": [
            {
                "code": "F1",
                "zone": "Z-DRINKS",
                "kind": "shelf",
                "position": [1.0, 0.5],
                "size": [2.0, 0.6],
                "bins": [{"code": "F1-A1", "sku": "COLA-330", "capacity": 24, "sensor": "W-F1-A1"}],
            }
        ],
        "devices": [
            {"code": "CAM-01", "kind": "camera", "position": [2.5, 2.0, 3.0], "covers": ["Z-DRINKS"]},
            {"code": "W-F1-A1", "kind": "weight_sensor", "fixture": "F1"},
            {"code": "GATE-IN", "kind": "gate"},
            {"code": "GATE-OUT", "kind": "gate"},
        ],
    }
    assert validate_layout(example, known_skus={"COLA-330"}) == []


def test_every_kind_of_broken_reference_is_reported_at_once(document: dict) -> None:
    broken = copy.deepcopy(document)
    broken["fixtures"][0]["zone"] = "Z-NOWHERE"
    broken["fixtures"][1]["bins"][0]["sku"] = "NOT-IN-CATALOG"
    broken["fixtures"][1]["bins"][1]["sensor"] = "W-MISSING"
    broken["devices"][0]["covers"] = ["Z-DRINKS", "Z-GHOST"]
    sensor = next(d for d in broken["devices"] if d["kind"] == "weight_sensor")
    sensor["fixture"] = "F-GHOST"
    broken["fixtures"][2]["bins"][0]["code"] = broken["fixtures"][2]["bins"][1]["code"]
    problems = _problems(broken)
    assert problems["fixtures[0].zone"] == "zone 'Z-NOWHERE' is not a zone of this layout"
    assert "not an active product" in problems["fixtures[1].bins[0].sku"]
    assert "is not a weight_sensor device" in problems["fixtures[1].bins[1].sensor"]
    assert "'Z-GHOST' is not a zone" in problems["devices[0].covers[1]"]
    assert any(path.endswith(".fixture") and "F-GHOST" in message for path, message in problems.items())
    assert "already used by" in problems["fixtures[2].bins[1].code"]
    assert len(problems) == 6


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.__setitem__("floor", {"width_m": 0, "depth_m": 10}), "floor.width_m"),
        (lambda d: d["floor"].__setitem__("depth_m", "wide"), "floor.depth_m"),
        (lambda d: d["zones"][0].__setitem__("polygon", [[0, 0], [1, 1]]), "zones[0].polygon"),
        (lambda d: d["zones"][0].__setitem__("polygon", [[0, 0], [1, 1], [2, 2]]), "zones[0].polygon"),
        (lambda d: d["zones"][0].__setitem__("polygon", [[0, 0], [99, 0], [99, 5]]), "zones[0].polygon[1]"),
        (lambda d: d["fixtures"][0].__setitem__("position", [23.5, 1.0]), "fixtures[0].position"),
        (lambda d: d["fixtures"][0].__setitem__("size", [2.0, -1]), "fixtures[0].size"),
        (lambda d: d["fixtures"][0].__setitem__("kind", ""), "fixtures[0].kind"),
        (lambda d: d["fixtures"][0].__setitem__("kind", "x" * 33), "fixtures[0].kind"),
        (lambda d: d["fixtures"][0].__setitem__("kind", 7), "fixtures[0].kind"),
        (lambda d: d["fixtures"][0]["bins"][0].__setitem__("capacity", 0), "fixtures[0].bins[0].capacity"),
        (lambda d: d["fixtures"][0]["bins"][0].__setitem__("capacity", 2.5), "fixtures[0].bins[0].capacity"),
        (lambda d: d["devices"][0].__setitem__("position", [1, 1]), "devices[0].position"),
        (lambda d: d["devices"][0].__setitem__("covers", []), "devices[0].covers"),
        (lambda d: d["devices"][0].__setitem__("kind", "lidar"), "devices[0].kind"),
        (lambda d: d["devices"][0].__setitem__("code", ""), "devices[0].code"),
        (lambda d: d["devices"][0].__setitem__("code", "F01"), "devices[0].code"),
        (lambda d: d.__setitem__("zones", "all of them"), "zones"),
        (lambda d: d["fixtures"].append("not an object"), f"fixtures[{12}]"),
    ],
)
def test_geometry_and_shape_problems(document: dict, change, path: str) -> None:
    change(document)
    assert path in _problems(document)


def test_one_sensor_under_two_bins_is_refused(document: dict) -> None:
    first, second = document["fixtures"][0]["bins"][:2]
    second["sensor"] = first["sensor"]
    problems = _problems(document)
    assert "already under bin" in problems["fixtures[0].bins[1].sensor"]


def test_a_sensor_declared_on_another_fixture_is_refused(document: dict) -> None:
    sensor = next(d for d in document["devices"] if d["code"] == "W-F01-B01")
    sensor["fixture"] = "F02"
    assert "which is on fixture 'F01'" in _problems(document)["devices[8].fixture"]


def test_fixture_kinds_are_free_text_and_staff_devices_are_devices(document: dict) -> None:
    document["fixtures"][0]["kind"] = "crate"
    document["fixtures"][1]["kind"] = "endcap promo"
    document["fixtures"][2].pop("kind", None)
    document["devices"].append({"code": "STAFF-01", "kind": "staff_device"})
    document["devices"].append({"code": "STAFF-02", "kind": "staff_device", "position": [1.0, 1.0]})
    assert _problems(document) == {}


@pytest.mark.parametrize("document", [None, [], "layout", 42])
def test_a_document_that_is_not_an_object(document: object) -> None:
    assert _problems(document) == {"": "the layout must be a JSON object"}

"""The API's JSON renderer."""

from __future__ import annotations

from core.api.renderers import OrjsonRenderer


def test_errors_keyed_by_list_index_render_as_json() -> None:
    """DRF keys a ListField's item errors by index (an int): they must render, not crash into a 500."""
    assert OrjsonRenderer().render({"lines": {0: ["Not a valid SKU."]}}) == b'{"lines":{"0":["Not a valid SKU."]}}'

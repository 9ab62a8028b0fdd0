"""JSON content in and out: `content_from_json` then `describe_update` gives it back."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ystores.operations import content_as_json, content_from_json
from ystores.operations.content import describe_update

scalars = st.none() | st.booleans() | st.integers(-(2**52), 2**52) | st.text(max_size=20)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
roots = st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.one_of(
        st.builds(lambda s: {"type": "Y.Text", "value": s}, st.text(min_size=1, max_size=30)),
        st.builds(
            lambda d: {"type": "Y.Map", "value": d},
            st.dictionaries(st.text(max_size=8), values, min_size=1, max_size=4),
        ),
        st.builds(
            lambda a: {"type": "Y.Array", "value": a}, st.lists(values, min_size=1, max_size=4)
        ),
    ),
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(roots)
def test_json_content_round_trips(content: dict[str, Any]) -> None:
    assert content_as_json(describe_update(content_from_json(content))) == content

"""Hypothesis strategies for hostile frames: random text and bytes, and JSON that looks right."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from hana_voice.errors import ProtocolError

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
base64ish = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/=", max_size=40),
    st.text(max_size=10),
)


def messages(type_key: str, types: list[str], field_names: list[str]) -> st.SearchStrategy[str]:
    """JSON text frames with a plausible type and fields of random shape."""
    plausible = {
        name: st.one_of(json_values, base64ish, st.sampled_from(list("0123456789*#")))
        for name in field_names
    }
    body = st.fixed_dictionaries(
        {type_key: st.one_of(st.sampled_from(types), json_scalars)},
        optional={
            **plausible,
            "data": st.one_of(json_values, st.fixed_dictionaries({}, optional=plausible)),
            "start": st.one_of(json_values, st.fixed_dictionaries({}, optional=plausible)),
            "media": st.fixed_dictionaries({}, optional=plausible),
            "dtmf": st.fixed_dictionaries({}, optional=plausible),
            "mark": st.fixed_dictionaries({}, optional=plausible),
        },
    )
    return body.map(lambda obj: json.dumps(obj, ensure_ascii=False))


def any_frames(
    type_key: str, types: list[str], field_names: list[str]
) -> st.SearchStrategy[list[str | bytes]]:
    frame: st.SearchStrategy[str | bytes] = st.one_of(
        st.text(max_size=60),
        st.binary(max_size=60),
        messages(type_key, types, field_names),
    )
    return st.lists(frame, max_size=12)


def feed_without_surprises(codec: Any, frames: list[str | bytes]) -> None:
    """Feed frames as a session would: ProtocolError only, and stop at a fatal one."""
    for frame in frames:
        try:
            codec.receive(frame)
        except ProtocolError as exc:
            assert exc.code
            assert str(exc)
            if exc.fatal:
                return

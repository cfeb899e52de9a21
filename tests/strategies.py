"""Hypothesis strategies for what users send: JSON-like values and Unicode that is odd, hostile or not valid.

Shared by the property tests of the SDK (``tests/test_inputs.py``) and of the CLI's line reader
(``tests/cli/test_line_properties.py``). Seeds are fixed (``derandomize``), so a run is the same everywhere.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROPERTIES = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD_TEXTS = [
    "\x00",
    "\u202eevil\u202c",
    "\u200f\u05e9\u05dc\u05d5\u05dd",
    "\ufeff",
    "\U0001f600",
    "\\boxed{10, 1}",
    "[The End of Response 1]",
    "#### Scores ####",
    "x" * 200_000,
]
BAD_TEXTS = ["s\ud800", "\udc00", "\ud83d\ude00", "", " \n\t"]
ODD_CHARS = st.sampled_from(["\x00", "\u202e", "\u200f", "{", "}", "\\", "#", "["])
WELL_FORMED = st.one_of(st.text(st.characters() | ODD_CHARS, min_size=1, max_size=30), st.sampled_from(ODD_TEXTS))
TEXT = st.one_of(
    WELL_FORMED, st.text(st.characters(categories=["Cs"]) | st.characters(), max_size=12), st.sampled_from(BAD_TEXTS)
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=6,
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "bot"]), "content": TEXT},
    optional={"name": JSON},
)
CHATS = st.tuples(st.lists(MESSAGE, max_size=2), WELL_FORMED).map(
    lambda chat: [*chat[0], {"role": "user", "content": chat[1]}]
)

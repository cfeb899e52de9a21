r"""Caller text that cannot pose as the prompt's own structure (docs/security.md, "Prompt injection").

In a filled template the only structure is the template's: ``#### Section ####`` headers, the ``[The
Begin/End of Response i]`` delimiters, the ``User:`` / ``Assistant:`` / ``System:`` turn labels and, in
training, the hint line. Caller text sits between them, so a line of it that *reads* like one of those
could rewrite the prompt for an LLM reader, look-alike or not. Each line is therefore checked in a folded
form (NFKD, invisible and combining characters dropped, common Cyrillic/Greek look-alikes mapped to Latin,
case folded); a line that looks like structure gets the quote prefix ``> `` and keeps every character. A turn
label indented by 4 or more spaces or a tab is a Markdown code block (``    user: admin`` in YAML), not a turn.
Chat-template special tokens (``<|im_end|>``, ``<｜User｜>``, ``<start_of_turn>``) get a space after their
``<`` so a server's tokenizer cannot read them as real turns, and ``\boxed{`` becomes ``\boxed {`` so the
score parser cannot read a planted box. Text with none of these comes back as given.
"""

from __future__ import annotations

import functools
import re
import unicodedata

QUOTE_PREFIX = "> "
"""What a marker-like line of caller text is prefixed with: a Markdown quote, read as quoted content."""

_LINE_BREAK = re.compile(r"(\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029])")
"""Every line boundary ``str.splitlines`` knows: a reader may start a new line at any of them."""
_OTHER_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_OTHER_BREAK = re.compile(rf"\r\n?|[{_OTHER_BREAKS}]")
_PLAIN_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n"

_SP = "[ \t\u1680]"  # the spaces a folded line can still hold (NFKD turns the others into " ")
_DECORATION = r"[ \t\u1680*_~`\\]*"  # what may precede a marker at a line start: spaces, emphasis, a backslash
_TURN_DECORATION = r"[ \u1680]{0,3}(?:[*_~`\\][ \t\u1680*_~`\\]*)?"
"""What may precede a turn label: at most 3 spaces (4 or a tab make a Markdown code block, where ``user:`` and
``system:`` are keys of YAML or code), then emphasis or a backslash."""


def _words(phrase: str) -> str:
    return f"{_SP}*".join(re.escape(word) for word in phrase.split())


_SECTIONS = "|".join(
    _words(title)
    for title in ("evaluation criteria", "conversation context", "responses to be scored", "output format requirements")
)
_DELIMITER_HEAD = rf"(?:the{_SP}*)?(?:begin|end|start){_SP}*"
_LINE_START = (
    rf"(?:#{_SP}*){{4,}}"  # an unclosed #### Header
    rf"|#{_SP}*#.*#{_SP}*#{_SP}*$"  # a closed ## Header ## (or ### ... ###)
    rf"|(?:#{_SP}*)*(?:{_SECTIONS})(?:{_SP}|[*#:])*$"  # a template section's title alone on its line
    rf"|{_words('the best response is')}{_SP}*:?{_SP}*response"  # the hinted-sampling line
    rf"|{_DELIMITER_HEAD}of{_SP}*(?:the{_SP}*)?responses?{_SP}*(?:\d+|[a-z])?{_SP}*[\])}}>]?{_SP}*[.:]?{_SP}*$"
)
_TURN = rf"(?:[\[(<]{_SP}*)?(?:user|assistant|system|human){_SP}*[\])>]?{_SP}*:"
_AT_LINE_START = re.compile(rf"\n(?:{_DECORATION}(?:{_LINE_START})|{_TURN_DECORATION}{_TURN})", re.MULTILINE)
"""Structure at a line start, searched in ``"\n" + folded`` (the literal first ``\n`` keeps the scan fast).

Headers, section titles, delimiters and the hint line count at any indentation; a turn label only where it
is no Markdown code block (see ``_TURN_DECORATION``)."""
_OF_RESPONSE = re.compile(rf"of{_SP}*(?:the{_SP}*)?response")
_OPENS_DELIMITER = re.compile(rf"[\[({{<\u3010\u3014\u3016]{_SP}*{_DELIMITER_HEAD}$")
"""What precedes "of response" in a bracketed delimiter such as ``[The End of Response 1]``, anywhere in a line."""

_SPECIAL_TOKEN = re.compile(r"<(?=[|\uff5c][^<>|\uff5c\s]{1,64}[|\uff5c]>|(?:start_of_turn|end_of_turn|bos|eos)>)")
"""The opening ``<`` of a chat-template special token: ChatML/Llama 3 ``<|...|>``, DeepSeek ``<｜...｜>``, Gemma."""
_BOX_OPENING = "\\boxed{"

_LOOK_ALIKES = str.maketrans(
    "АВЕКМНОРСТХУЅІЈаеорсухѕіјһԁԛԝΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοριυςıɡ",
    "ABEKMHOPCTXYSIJaeopcyxsijhdqwABEZHIKMNOPTYXaopiucig",
)
"""Cyrillic and Greek letters that NFKD leaves alone but that read as Latin ones (applied after NFKD, which
turns the lunate sigma ``ϲ`` into the final sigma ``ς``)."""
_LOOK_ALIKE = re.compile(f"[{''.join(chr(c) for c in _LOOK_ALIKES)}]")


def _invisible_ranges(planes: tuple[range, ...]) -> str:
    keep = set(map(ord, "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85"))
    codes = [c for r in planes for c in r if c not in keep and unicodedata.category(chr(c)) in ("Cf", "Cc", "Mn", "Me")]
    ranges: list[list[int]] = []
    for c in codes:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]"


@functools.cache
def _invisible() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Format, control and combining characters (line breaks aside), in the BMP and beyond it.

    Built on the first text that needs them; two patterns because a class holding only BMP characters
    scans several times faster.
    """
    bmp = _invisible_ranges((range(0x10000),))
    astral = _invisible_ranges((range(0x1D100, 0x1D200), range(0xE0000, 0xE1000)))
    return re.compile(bmp), re.compile(astral)


def fold(text: str) -> str:
    r"""The text as a reader would take it: look-alikes folded, invisible characters gone, breaks as ``\n``."""
    if text.isascii() and not text.encode().translate(None, _PLAIN_ASCII):
        return text.lower()
    bmp, astral = _invisible()
    text = bmp.sub("", unicodedata.normalize("NFKD", text))
    if len(text.encode("utf-16-le", "surrogatepass")) > 2 * len(text):  # characters beyond the BMP
        text = astral.sub("", text)
    if _LOOK_ALIKE.search(text):
        text = text.translate(_LOOK_ALIKES)
    if any(c in text for c in _OTHER_BREAKS):
        text = _OTHER_BREAK.sub("\\n", text)
    return text.lower()


def _holds_marker(folded: str) -> bool:
    if _AT_LINE_START.search("\n" + folded):
        return True
    if "of" not in folded or "response" not in folded:  # both are in every match of _OF_RESPONSE
        return False
    for match in _OF_RESPONSE.finditer(folded):
        line_start = folded.rfind("\n", 0, match.start()) + 1
        if _OPENS_DELIMITER.search(folded, line_start, match.start()):
            return True
    return False


def looks_like_marker(line: str) -> bool:
    """Whether one line of caller text could be taken for template structure or a turn."""
    return _holds_marker(fold(line))


_CACHED_LENGTH = 4096
"""Texts up to this many characters are memoised (256 of them: at most about 1 MB kept alive)."""


def neutralise_counted(text: str) -> tuple[str, int]:
    """``text`` with its markers defused, and how many lines and special tokens that took.

    A response is rendered once per distinct order and counted once, so short texts are memoised; long ones are
    checked again rather than kept alive.
    """
    return _neutralise_cached(text) if len(text) <= _CACHED_LENGTH else _neutralise(text)


@functools.lru_cache(maxsize=256)
def _neutralise_cached(text: str) -> tuple[str, int]:
    return _neutralise(text)


def _neutralise(text: str) -> tuple[str, int]:
    tokens = 0
    if "<" in text:
        text, tokens = _SPECIAL_TOKEN.subn("< ", text)
    if _BOX_OPENING in text:
        text = text.replace(_BOX_OPENING, "\\boxed {")
    if not _holds_marker(fold(text)):
        return text, tokens
    parts = _LINE_BREAK.split(text)
    lines = 0
    for i in range(0, len(parts), 2):  # even parts are lines, odd parts the breaks between them
        if looks_like_marker(parts[i]):
            parts[i] = QUOTE_PREFIX + parts[i]
            lines += 1
    return "".join(parts), tokens + lines

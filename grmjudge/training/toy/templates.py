r"""The toy judge's prompts: the Default template's sections and output format, without its long rubric.

The DeepSeek-GRM template spends about 1,100 tokens on general criteria before the conversation. A tiny model
on two CPU cores cannot afford that per sample, and the toy tasks need none of it, so the toy GRM reads a short
instruction and then exactly the Default template's ``#### Conversation Context ####``, ``#### Responses to be
Scored ####`` and ``#### Output Format Requirements ####`` sections; its judgements have the Default format
(Specific Criteria, Analysis, Scores in ``\boxed{}``) and go through the same parser.
"""

from __future__ import annotations

import json
from pathlib import Path

from grmjudge.prompts import PromptTemplate

__all__ = ["TOY_SINGLE_TEMPLATE", "TOY_TEMPLATE", "write_template"]

_FORMAT = """#### Output Format Requirements ####
Output with three lines: Specific Criteria, Analysis, Scores ({scores})."""

TOY_TEMPLATE = PromptTemplate(
    id="toy-grm",
    text=(
        "Score each response from 1 to 10 by how well it answers the question.\n"
        "#### Conversation Context ####\n{context}\n#### Responses to be Scored ####\n{responses}\n"
        + _FORMAT.format(scores="every response's score in order, in \\boxed{x, x}")
    ),
    score_range=(1, 10),
)
"""The toy judge's template for two or more responses, scores 1-10."""

TOY_SINGLE_TEMPLATE = PromptTemplate(
    id="toy-grm-single-0-1",
    text=(
        "Score the response 1 if it answers the question correctly, else 0.\n"
        "#### Conversation Context ####\n{context}\n#### Responses to be Scored ####\n{responses}\n"
        + _FORMAT.format(scores="in \\boxed{x}")
    ),
    score_range=(0, 1),
    numbered=False,
)
"""The toy judge's template for one response, scored 0 or 1."""


def write_template(template: PromptTemplate, path: str | Path) -> Path:
    """Save ``template`` as JSON, the file form the training commands and ``--template`` options read."""
    out = Path(path)
    data = template.model_dump(mode="json")
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return out

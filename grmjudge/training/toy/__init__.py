"""A toy SPCT reproduction that runs on two CPU cores: proof that each training stage improves the judge.

No real GRM can be downloaded or trained on a laptop, so this package builds a judging task a tiny model can
learn (`tasks`), a noisy teacher that writes judgements in the Default format (`teacher`), and runs the whole
SPCT pipeline on it with the package's own trainers (`pipeline`): cold-start SFT, rejective fine-tuning,
GRPO with the SPCT reward, and a meta RM. `report` prints the paper's Table 3 for the result and draws
accuracy against k. Commands::

    python -m grmjudge.training.toy run --out DIR [--quick]
    python -m grmjudge.training.toy report DIR

Needs the ``train`` and ``eval`` extras. The GRM and meta RM of the full run ship with the package and are
what ``grmjudge demo`` judges with.
"""

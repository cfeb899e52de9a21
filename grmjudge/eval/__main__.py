"""``python -m grmjudge.eval``: the same ``main`` as ``grmjudge eval``."""

from grmjudge.eval.cli import main

raise SystemExit(main())

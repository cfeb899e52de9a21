"""``python -m grmjudge.cli``: the same ``main`` as the installed ``grmjudge`` command."""

from grmjudge.cli import main

raise SystemExit(main())

"""``python -m grmjudge.training COMMAND ...``; see `grmjudge.training.cli`."""

from grmjudge.training.cli import main

raise SystemExit(main())

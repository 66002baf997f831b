"""`python -m abm` is the same as the `abm` command."""

from abm.cli import main

raise SystemExit(main())

"""`python -m moegate.properties ...`: the `moegate` command (see `moegate.properties.cli`)."""

from .cli import main

raise SystemExit(main())

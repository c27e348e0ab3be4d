"""`python -m qa.bench ...` is `qa bench ...`."""

from .cli import main

raise SystemExit(main())

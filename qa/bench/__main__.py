"""`python -m qa.bench ...` is `qa bench ...`."""

from qa.bench.cli import main

raise SystemExit(main())

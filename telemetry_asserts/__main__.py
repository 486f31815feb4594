"""``python -m telemetry_asserts``: the ``telemetry-asserts`` command line."""

from .cli import main

raise SystemExit(main())

"""`python -m lib.sweep COMMAND PROFILE`: the sweep commands make calls (`lib.sweep.cli`)."""

import sys

from .cli import main

sys.exit(main())

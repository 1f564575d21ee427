"""`python -m kerasgen` is the `kerasgen` command."""

import sys

from kerasgen.cli import main

sys.exit(main())

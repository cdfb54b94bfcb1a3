"""`python -m dsrl_platform.cli`: the same as `dsrl-platform`."""

import sys

from dsrl_platform.cli import main

sys.exit(main())

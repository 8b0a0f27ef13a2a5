"""``python -m reminders``: the same as the ``reminders`` command."""

import sys

from reminders.cli import main

sys.exit(main())

"""``python -m drill``: run the incident-response drill; the exit status says whether it held."""

import sys

from drill.runner import main

sys.exit(main(sys.argv[1:]))

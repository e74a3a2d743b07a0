import sys

from vptlab.cli import main

sys.exit(main())

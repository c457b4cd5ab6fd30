import sys

from streamwarden.cli import main

sys.exit(main())

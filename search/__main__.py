import sys

from search.cli._cli import main

sys.exit(main())

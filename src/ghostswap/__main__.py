import sys

from ghostswap.cli.main import main

sys.exit(main())

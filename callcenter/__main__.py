import sys

from callcenter.cli.main import main

sys.exit(main())

import sys

from ritm_qgis.cli import main

sys.exit(main())

"""``python -m layerlab.samples --out DIR``: write the sample images."""

import sys

from .build import main

sys.exit(main())

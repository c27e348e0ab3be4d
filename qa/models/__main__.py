import sys

from qa.models.files import main

sys.exit(main())

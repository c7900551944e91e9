"""`python -m firmware.prompts build|list`: render or list the spoken prompt set."""
import sys

from firmware.prompts import main

sys.exit(main())

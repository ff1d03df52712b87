"""Settings the type checker loads: the test settings, without starting a database server.

mypy ends its process without running exit handlers, so an embedded server it started
would outlive it; the checker never connects, so a URL that names no server is enough.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://typecheck@/not-connected")

from .test import *  # noqa: F403

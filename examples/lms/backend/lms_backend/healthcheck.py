"""Container healthcheck: exit 0 when GET /health answers 200."""

import os
import sys
import urllib.request

url = "http://%s:%s/health" % (os.environ.get("LMS_BIND", "127.0.0.1"), os.environ.get("LMS_PORT", "5002"))
try:
    with urllib.request.urlopen(url, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:  # unreachable, refused, 5xx: all unhealthy
    sys.exit(1)

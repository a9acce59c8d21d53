"""ASGI entry point (production: several stateless processes behind a load balancer).

Django's handler, with each request's sync thread lent from a pool rather than started and joined (calls/asgi.py).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vccweb.settings")

from calls.asgi import get_asgi_application  # noqa: E402  (after the settings module is named)

application = get_asgi_application()

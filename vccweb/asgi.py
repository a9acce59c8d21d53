"""ASGI entry point (production: several stateless processes behind a load balancer).

Django's handler, without its request_started receivers when they have nothing to do (calls/asgi.py).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vccweb.settings")

from calls.asgi import get_asgi_application  # noqa: E402  (after the settings module is named)

application = get_asgi_application()

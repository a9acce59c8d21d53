"""ASGI entry point (production: several stateless processes behind a load balancer)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vccweb.settings")
application = get_asgi_application()

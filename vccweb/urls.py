from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from calls import api
from calls.logins import LimitedAdminAuthenticationForm, login
from calls.views import ops

admin.site.site_header = "vccweb administration"
admin.site.site_title = "vccweb admin"
admin.site.login_form = LimitedAdminAuthenticationForm

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("login/", login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls()),
    path("", include("calls.urls")),
]

handler500 = "calls.views.ops.server_error"

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.oidc import provider as oidc_provider
from accounts.oidc import views as oidc_views
from generations.api import api as json_api

admin.site.site_header = "Kiln administration"
admin.site.site_title = "Kiln admin"
admin.site.index_title = "Teams, provider keys and credits"

urlpatterns = [
    # With password sign-in off, the admin's own password form is too (accounts/oidc/views.py).
    path("admin/login/", oidc_views.admin_login),
    path("admin/", admin.site.urls),
    # OpenID Connect sign-in, outside the accounts namespace: allauth reverses these names.
    path("accounts/oidc/", include(oidc_provider.urlpatterns)),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", json_api.urls()),
    path("home/", RedirectView.as_view(pattern_name="generations:studio"), name="home"),
    # Pages without our <link rel="icon"> (the admin) ask browsers to fetch /favicon.ico.
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg", permanent=True)),
    path("", include("generations.urls")),
]

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from generations.api import api as json_api

admin.site.site_header = "Kiln administration"
admin.site.site_title = "Kiln admin"
admin.site.index_title = "Teams, provider keys and credits"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", json_api.urls()),
    path("home/", RedirectView.as_view(pattern_name="generations:studio"), name="home"),
    # Pages without our <link rel="icon"> (the admin) ask browsers to fetch /favicon.ico.
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg", permanent=True)),
    path("", include("generations.urls")),
]

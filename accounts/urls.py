"""Each area's views module declares its own ``urlpatterns``; this joins them."""

from accounts import credit_views, key_views, views

app_name = "accounts"

urlpatterns = [
    *views.urlpatterns,
    *key_views.urlpatterns,
    *credit_views.urlpatterns,
]

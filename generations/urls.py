"""Each area's views module declares its own ``urlpatterns``; this joins them."""

from generations.views import gallery, share, studio, webhooks

app_name = "generations"

urlpatterns = [
    *studio.urlpatterns,
    *gallery.urlpatterns,
    *share.urlpatterns,
    *webhooks.urlpatterns,
]

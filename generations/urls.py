"""Each room's views module declares its own ``urlpatterns``; this joins them."""

from generations import webhooks
from generations.boards import views as boards
from generations.gallery import views as gallery
from generations.share import views as share
from generations.studio import views as studio

app_name = "generations"

urlpatterns = [
    *studio.urlpatterns,
    *gallery.urlpatterns,
    *share.urlpatterns,
    *boards.urlpatterns,
    *webhooks.urlpatterns,
]

"""Each room's views module declares its own ``urlpatterns``; this joins them under /accounts/."""

from accounts import views
from accounts.credits import views as credit_views
from accounts.oidc import views as oidc_views
from accounts.tokens import views as token_views
from generations.keys import views as key_views
from generations.prompt_templates import views as template_views
from generations.team_webhooks import views as webhook_views

app_name = "accounts"

urlpatterns = [
    *views.urlpatterns,
    *key_views.urlpatterns,
    *template_views.urlpatterns,
    *webhook_views.urlpatterns,
    *credit_views.urlpatterns,
    *token_views.urlpatterns,
    *oidc_views.urlpatterns,
]

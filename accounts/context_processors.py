from django.conf import settings
from django.utils.functional import SimpleLazyObject

from accounts.models import Team
from accounts.oidc.domains import buttons as oidc_buttons

# The header's nav link to mark as current, by path prefix (first match wins).
NAV_SECTIONS = [
    ("/accounts/usage/", "usage"),
    ("/accounts/team/", "team"),
    ("/accounts/", "account"),
    ("/gallery/", "gallery"),
    ("/g/", "gallery"),
    ("/shares/", "shares"),
    ("/studio/", "studio"),
]


def nav_section(path: str) -> str:
    if path == "/":
        return "studio"
    return next((name for prefix, name in NAV_SECTIONS if path.startswith(prefix)), "")


def current_team(request):
    membership = getattr(request, "membership", None)
    section = nav_section(request.path)
    if not membership:
        return {"membership": None, "team": None, "my_teams": [], "nav_section": section,
                "password_login": settings.KILN_PASSWORD_LOGIN,
                "oidc_providers": oidc_buttons()}

    def my_teams():
        # For the header's team switcher: only teams the user belongs to.
        return list(Team.objects.filter(memberships__user=request.user, memberships__removed_at__isnull=True)
                    .order_by("name").only("public_id", "name"))

    return {"membership": membership, "team": membership.team, "my_teams": SimpleLazyObject(my_teams),
            "nav_section": section, "password_login": settings.KILN_PASSWORD_LOGIN,
                "oidc_providers": oidc_buttons()}

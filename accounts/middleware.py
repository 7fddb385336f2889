from django.utils.functional import SimpleLazyObject

from accounts.teams import current_membership


class CurrentTeamMiddleware:
    """Sets ``request.membership`` (lazily): the signed-in user's membership in the
    team they chose in the header, or their first team; None if they have none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: current_membership(request))
        return self.get_response(request)

"""Access helpers for team-owned objects: return the object or raise 404.

An outsider gets the same 404 as a missing object, so ids reveal nothing.
"""

from django.shortcuts import get_object_or_404

from accounts.models import Membership
from generations.models import Generation, Media


def team_generations(membership: Membership):
    return Generation.objects.filter(team_id=membership.team_id)


def get_generation_for_member(membership: Membership, public_id) -> Generation:
    return get_object_or_404(team_generations(membership).select_related("prompt", "author"), public_id=public_id)


def get_media_for_member(membership: Membership, public_id) -> Media:
    return get_object_or_404(Media.objects.select_related("generation"), public_id=public_id,
                             generation__team_id=membership.team_id)


def can_manage_generation(membership: Membership, generation: Generation) -> bool:
    """Authors and team owners/admins may archive, delete and cancel."""
    return generation.author_id == membership.user_id or membership.is_manager

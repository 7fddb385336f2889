"""``manage.py teams create|list``: teams from the command line.

Exit status: 0 on success, 2 on bad input (bad slug, taken slug, bad e-mail).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from accounts.models import Membership, Role, Team
from accounts.services import MembershipError, create_team


class Command(BaseCommand):
    help = "Create and list teams."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", metavar="{create,list}")
        actions.required = True
        create = actions.add_parser("create", help="Create a team with an owner (the account is created if needed).")
        create.add_argument("slug", help="Short unique id: letters, digits, - and _.")
        create.add_argument("--name", required=True, help="Display name.")
        create.add_argument("--owner", required=True, help="The owner's e-mail address.")
        actions.add_parser("list", help="List teams with their member counts and owners.")

    def handle(self, *args, action, **options):
        return getattr(self, f"handle_{action}")(**options)

    def handle_create(self, *, slug, name, owner, **_):
        try:
            added = create_team(slug, name, owner)
        except MembershipError as exc:
            raise CommandError(str(exc), returncode=2) from None
        team = added.membership.team
        self.stdout.write(f"Created team {team.slug} ({team.name}) owned by {added.membership.user.email}.")
        if added.set_password_path:
            self.stdout.write(
                f"{added.membership.user.email} has no password yet. One-time link to choose one "
                f"(shown once; it stops working when used):\n  {settings.KILN_PUBLIC_URL}{added.set_password_path}")

    def handle_list(self, **_):
        teams = Team.objects.annotate(members=Count("memberships", filter=Q(memberships__removed_at__isnull=True)))
        owners: dict[int, list[str]] = {}
        for team_id, email in (Membership.objects.active().filter(role=Role.OWNER)
                               .values_list("team_id", "user__email")):
            owners.setdefault(team_id, []).append(email)
        if not teams:
            self.stdout.write("No teams yet: manage.py teams create SLUG --name NAME --owner EMAIL")
            return
        self.stdout.write(f"{'SLUG':<20} {'NAME':<30} {'MEMBERS':>7}  OWNERS")
        for team in teams.order_by("slug"):
            self.stdout.write(f"{team.slug:<20} {team.name[:30]:<30} {team.members:>7}  "
                              f"{', '.join(owners.get(team.pk, [])) or '-'}")

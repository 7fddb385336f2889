"""``manage.py teams create|list|invite|invitations``: teams from the command line.

People join a team only through an e-mailed invitation, the operator's too: ``create``
and ``invite`` e-mail the link and print it only with ``--print-link`` (for an operator
without a mail server; the link lets whoever holds it join as that address).

Exit status: 0 on success, 2 on bad input (bad slug, taken slug, bad e-mail, unknown
team or role), 1 when the invitation is saved but its e-mail could not be sent.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.utils import timezone

from accounts import invitations
from accounts.models import Invitation, InvitationState, Membership, Role, Team
from accounts.services import MembershipError


class Command(BaseCommand):
    help = "Create and list teams, invite people to them and list their invitations."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", metavar="{create,list,invite,invitations}")
        actions.required = True
        create = actions.add_parser("create", help="Create a team and e-mail its owner an invitation.")
        create.add_argument("slug", help="Short unique id: letters, digits, - and _.")
        create.add_argument("--name", required=True, help="Display name.")
        create.add_argument("--owner", required=True, help="The owner's e-mail address.")
        create.add_argument("--print-link", action="store_true",
                            help="Also print the invitation link (whoever holds it can join as the owner).")
        actions.add_parser("list", help="List teams with their member counts and owners.")
        invite = actions.add_parser("invite", help="E-mail an invitation to a team (again, with a new link, "
                                                   "if one is pending).")
        invite.add_argument("slug", help="The team's slug.")
        invite.add_argument("email", help="The address to invite.")
        invite.add_argument("--role", default=Role.MEMBER, help="owner, admin or member (default: member).")
        invite.add_argument("--print-link", action="store_true",
                            help="Also print the invitation link (whoever holds it can join as that address).")
        listing = actions.add_parser("invitations", help="List a team's invitations (never their links).")
        listing.add_argument("slug", help="The team's slug.")

    def handle(self, *args, action, **options):
        return getattr(self, f"handle_{action}")(**options)

    def _report(self, sent: invitations.Sent, print_link: bool) -> None:
        invitation = sent.invitation
        if print_link:
            self.stdout.write(f"Invitation link (works once, until {invitation.expires:%Y-%m-%d %H:%M %Z}):\n"
                              f"  {sent.link}")
        if sent.error:
            raise CommandError(f"The invitation is saved, but the e-mail to {invitation.email} could not be sent: "
                               f"{sent.error}. Fix the mail settings (EMAIL_HOST...) and run "
                               f"`manage.py teams invite {invitation.team.slug} {invitation.email} "
                               f"--role {invitation.role}` again, or use --print-link.", returncode=1)
        self.stdout.write(f"Invitation e-mailed to {invitation.email} ({invitation.role} of {invitation.team.slug}); "
                          f"the link works once, until {invitation.expires:%Y-%m-%d %H:%M %Z}.")

    def _team(self, slug: str) -> Team:
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            raise CommandError(f"Unknown team {slug!r} (see `manage.py teams list`).", returncode=2)
        return team

    def handle_create(self, *, slug, name, owner, print_link, **_):
        try:
            sent = invitations.create_team(slug, name, owner)
        except MembershipError as exc:
            raise CommandError(str(exc), returncode=2) from None
        team = sent.invitation.team
        self.stdout.write(f"Created team {team.slug} ({team.name}); {sent.invitation.email} becomes its owner "
                          "by accepting the invitation.")
        self._report(sent, print_link)

    def handle_invite(self, *, slug, email, role, print_link, **_):
        team = self._team(slug)
        try:
            sent = invitations.invite(team, email, role)
        except MembershipError as exc:
            raise CommandError(str(exc), returncode=2) from None
        self._report(sent, print_link)

    def handle_invitations(self, *, slug, **_):
        team = self._team(slug)
        rows = Invitation.objects.filter(team=team).select_related("invited_by").order_by("-created")
        if not rows:
            self.stdout.write(f"No invitations for {team.slug}: manage.py teams invite {team.slug} EMAIL --role ROLE")
            return
        self.stdout.write(f"{'EMAIL':<32} {'ROLE':<7} {'STATE':<9} {'INVITED':<17} {'BY':<24} SENT / ENDED")
        for inv in rows:
            when = inv.ended or inv.sent
            note = f"{timezone.localtime(when):%Y-%m-%d %H:%M}" if when else "not sent yet"
            if inv.status == InvitationState.PENDING:
                note += f", until {timezone.localtime(inv.expires):%Y-%m-%d %H:%M}"
            self.stdout.write(f"{inv.email[:32]:<32} {inv.role:<7} {inv.status:<9} "
                              f"{timezone.localtime(inv.created):%Y-%m-%d %H:%M} "
                              f"{(inv.invited_by.email if inv.invited_by else 'operator')[:24]:<24} {note}")

    def handle_list(self, **_):
        teams = Team.objects.annotate(
            members=Count("memberships", filter=Q(memberships__removed_at__isnull=True), distinct=True),
            invited=Count("invitations", filter=Q(invitations__state=InvitationState.PENDING), distinct=True))
        owners: dict[int, list[str]] = {}
        for team_id, email in (Membership.objects.active().filter(role=Role.OWNER)
                               .values_list("team_id", "user__email")):
            owners.setdefault(team_id, []).append(email)
        if not teams:
            self.stdout.write("No teams yet: manage.py teams create SLUG --name NAME --owner EMAIL")
            return
        self.stdout.write(f"{'SLUG':<20} {'NAME':<30} {'MEMBERS':>7} {'INVITED':>7}  OWNERS")
        for team in teams.order_by("slug"):
            self.stdout.write(f"{team.slug:<20} {team.name[:30]:<30} {team.members:>7} {team.invited:>7}  "
                              f"{', '.join(owners.get(team.pk, [])) or '-'}")

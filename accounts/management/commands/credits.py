"""``manage.py credits grant|balance|verify``: credits from the command line.

Exit status: 0 on success, 1 when ``verify`` finds a wallet that differs from
its ledger, 2 on bad input (unknown team or member, bad amount, no reason).
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.credits.models import CREDITS_PER_USD, Wallet
from accounts.credits.services import DeductionTooLarge, grant, verify, wallet_for
from accounts.models import Membership, Team


def bad_input(message: str) -> CommandError:
    return CommandError(message, returncode=2)


class Command(BaseCommand):
    help = "Grant or deduct credits, show balances, and verify every wallet against its ledger."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", metavar="{grant,balance,verify}")
        actions.required = True
        g = actions.add_parser("grant", help="Grant credits to a member (a negative amount deducts).")
        g.add_argument("--team", help="Team slug.")
        g.add_argument("--user", help="Member's e-mail address.")
        g.add_argument("--amount", help="Credits, a non-zero integer; negative deducts.")
        g.add_argument("--reason", help="Why (kept in the ledger).")
        b = actions.add_parser("balance", help="Show members' available and reserved credits.")
        b.add_argument("--team", help="Team slug.")
        b.add_argument("--user", help="Only this member's e-mail address.")
        actions.add_parser("verify", help="Check every wallet equals the sum of its ledger entries.")

    def handle(self, *args, action, **options):
        return getattr(self, f"handle_{action}")(**options)

    # grant ---------------------------------------------------------------
    def handle_grant(self, *, team=None, user=None, amount=None, reason=None, **_):
        team_obj = self._team(team)
        membership = self._membership(team_obj, user)
        try:
            credits = int(str(amount).replace("_", "").replace(",", "")) if amount is not None else None
        except ValueError:
            credits = None
        if credits is None or credits == 0:
            raise bad_input(f"--amount must be a non-zero whole number of credits (got {amount!r}).")
        reason = (reason or "").strip()
        if not reason:
            raise bad_input("--reason is required: say why, it is kept in the ledger.")
        if len(reason) > 300:
            raise bad_input("--reason must be at most 300 characters.")
        wallet = wallet_for(membership)
        try:
            grant(wallet, credits, reason=reason)
        except DeductionTooLarge as exc:
            raise bad_input(str(exc)) from None
        wallet.refresh_from_db()
        verb = "Granted" if credits > 0 else "Deducted"
        self.stdout.write(f"{verb} {abs(credits):,} credits {'to' if credits > 0 else 'from'} "
                          f"{membership.user.email} in {team_obj.slug}; available now {wallet.available:,}.")

    # balance -------------------------------------------------------------
    def handle_balance(self, *, team=None, user=None, **_):
        team_obj = self._team(team)
        memberships = Membership.objects.active().filter(team=team_obj).select_related("user").order_by("user__email")
        if user:
            memberships = [self._membership(team_obj, user)]
        rows = []
        for m in memberships:
            wallet = Wallet.objects.filter(membership=m).first()
            rows.append((m.user.email, wallet.available if wallet else 0, wallet.reserved if wallet else 0))
        width = max([len("member"), *(len(r[0]) for r in rows)])
        self.stdout.write(f"{'member':<{width}}  {'available':>14}  {'reserved':>14}")
        for email, available, reserved in rows:
            self.stdout.write(f"{email:<{width}}  {available:>14,}  {reserved:>14,}")
        total = sum(r[1] for r in rows)
        self.stdout.write(f"{len(rows)} member(s); {total:,} credits available (≈ ${total / CREDITS_PER_USD:,.2f}).")

    # verify --------------------------------------------------------------
    def handle_verify(self, **_):
        checks = verify()
        wrong = [c for c in checks if not c.ok]
        for check in wrong:
            self.stdout.write(f"DIFFERS {check.describe()}")
        if wrong:
            raise CommandError(f"{len(wrong)} of {len(checks)} wallet(s) differ from their ledger.", returncode=1)
        self.stdout.write(f"All {len(checks)} wallet(s) match their ledger.")

    # lookups -------------------------------------------------------------
    def _team(self, slug) -> Team:
        if not slug:
            raise bad_input("--team is required (the team's slug).")
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            raise bad_input(f"No team with slug {slug!r}.")
        return team

    def _membership(self, team: Team, email) -> Membership:
        if not email:
            raise bad_input("--user is required (the member's e-mail address).")
        membership = (Membership.objects.active().select_related("user")
                      .filter(team=team, user__email__iexact=email.strip()).first())
        if membership is None:
            raise bad_input(f"{email} is not a member of {team.slug}.")
        return membership

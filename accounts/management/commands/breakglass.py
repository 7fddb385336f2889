from django.core.management.base import BaseCommand, CommandError

from accounts import mail
from accounts.models import User
from accounts.oidc import breakglass


class Command(BaseCommand):
    help = ("Print a link that signs a superuser in once, within 10 minutes: the way in when "
            "password sign-in is off (KILN_PASSWORD_LOGIN=0) and the identity provider is unusable.")

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--base-url", default="", help="Kiln's address (default: KILN_PUBLIC_URL).")

    def handle(self, *args, email, base_url, **options):
        user = User.objects.filter(email=email.strip().lower()).first()
        if user is None or not (user.is_superuser and user.is_active):
            raise CommandError(f"{email} is not an active superuser.")
        from django.urls import reverse

        path = reverse("accounts:breakglass", kwargs={"token": breakglass.make_token(user)})
        self.stdout.write(f"{(base_url.rstrip('/') or mail.site_url())}{path}")
        self.stderr.write(f"Works once, within {breakglass.LINK_SECONDS // 60} minutes, for {user.email}.")

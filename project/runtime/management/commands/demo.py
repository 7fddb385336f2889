"""``manage.py demo``: what ``make run`` needs to be useful at once. Idempotent.

A team "demo" (Demo Team) owned by demo@kiln.local (a superuser, so /admin/ works),
500,000 credits granted once, one active "Sandbox" key per provider pointing
at the local sandbox (KILN_SANDBOX_URL), and the sandbox's two Sealink templates
registered, so the studio's template picker has something to offer. The password is printed once, when the
account is created; run `manage.py changepassword demo@kiln.local` to set another.
"""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.credits.services import grant, wallet_for
from accounts.models import Membership, Role, Team, User
from generations.keys.models import ProviderKey
from generations.prompt_templates.models import PromptTemplate, TemplateVariable
from generations.providers.registry import PROVIDERS

TEAM_SLUG = "demo"
TEAM_NAME = "Demo Team"
OWNER_EMAIL = "demo@kiln.local"
DEMO_CREDITS = 500_000
# The templates the Sealink sandbox knows (generations/sandbox/sealink.py): (id, name, description,
# variables as (name, label, hint, required)).
DEMO_TEMPLATES = (
    ("tpl_sunset", "Sunset pan", "A serene place at sunset, the camera panning slowly across the water.",
     (("place", "Place", "A lake, a bay, a harbour…", True), ("mood", "Light", "Golden unless you name another.", False))),
    ("tpl_product", "Product turntable", "A product turning slowly on a turntable, soft studio light.",
     (("product", "Product", "What turns, e.g. a celadon teapot", True),
      ("surface", "Surface", "White unless you name another.", False))),
)


class Command(BaseCommand):
    help = "Create the demo team, its owner (a superuser) and sandbox provider keys, if they do not exist."

    @transaction.atomic
    def handle(self, *args, **options):
        team, _ = Team.objects.get_or_create(slug=TEAM_SLUG, defaults={"name": TEAM_NAME})
        password = None
        user = User.objects.filter(email=OWNER_EMAIL).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser(OWNER_EMAIL, password, name="Demo Owner")
        elif not (user.is_superuser and user.is_staff):
            user.is_superuser = user.is_staff = True
            user.save(update_fields=["is_superuser", "is_staff"])
        membership, _ = Membership.objects.get_or_create(team=team, user=user, defaults={"role": Role.OWNER})
        if membership.removed_at is not None or membership.role != Role.OWNER:
            membership.removed_at, membership.role = None, Role.OWNER
            membership.save(update_fields=["removed_at", "role"])
        granted = grant(wallet_for(membership), DEMO_CREDITS, reason="Demo credits",
                        idempotency_key="demo-grant")
        created_keys = []
        for provider_id in PROVIDERS:
            if ProviderKey.objects.filter(team=team, provider=provider_id, label="Sandbox").exists():
                continue
            key = ProviderKey(team=team, provider=provider_id, label="Sandbox", created_by=user,
                              base_url=f"{settings.KILN_SANDBOX_URL.rstrip('/')}/{provider_id}")
            key.set_api_key(f"sk-sandbox-{provider_id}")
            key.save()
            created_keys.append(provider_id)

        for template_id, name, description, variables in DEMO_TEMPLATES:
            template, created = PromptTemplate.objects.get_or_create(
                team=team, template_id=template_id, defaults={"name": name, "description": description,
                                                              "created_by": user})
            if created:
                TemplateVariable.objects.bulk_create(
                    TemplateVariable(template=template, position=i, name=var, label=label, hint=hint, required=req)
                    for i, (var, label, hint, req) in enumerate(variables))

        if password:
            self.stdout.write(self.style.SUCCESS(
                f"Demo account created. Sign in as {OWNER_EMAIL} with password: {password}\n"
                "  (shown only this once; change it at /accounts/password/ or with "
                f"`manage.py changepassword {OWNER_EMAIL}`)"))
        else:
            self.stdout.write(f"Demo account {OWNER_EMAIL} already exists (its password was printed when it was "
                              f"created; lost it? `.venv/bin/python manage.py changepassword {OWNER_EMAIL}`).")
        if granted:
            self.stdout.write(f"Granted {DEMO_CREDITS:,} demo credits.")
        if created_keys:
            self.stdout.write(f"Sandbox keys for {', '.join(created_keys)} at {settings.KILN_SANDBOX_URL}.")

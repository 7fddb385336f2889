"""``manage.py providerkeys add|list|disable|enable|rotate``: provider keys from the command line.

The API key is never taken from the command line (it would sit in the shell
history and in ``ps``): pipe it in with ``--api-key-stdin`` or set ``KILN_API_KEY``.

Exit status: 0 on success, 1 when rotation meets a key it cannot decrypt,
2 on bad input (unknown team, provider or key, malformed URL, missing API key).
"""

import os
import sys
import uuid

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Team
from generations.keys import services as keys
from generations.keys.crypto import DecryptionError
from generations.keys.models import ProviderKey
from generations.providers.registry import PROVIDERS


def bad_input(message: str) -> CommandError:
    return CommandError(message, returncode=2)


class Command(BaseCommand):
    help = "Add, list, disable, enable and re-encrypt (rotate) provider API keys."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", metavar="{add,list,disable,enable,rotate}")
        actions.required = True
        add = actions.add_parser(
            "add", allow_abbrev=False, help="Add a key. The API key comes from stdin (--api-key-stdin) or KILN_API_KEY, never argv.")
        add.add_argument("--team", required=True, help="Team slug.")
        add.add_argument("--provider", required=True, help=f"One of: {', '.join(PROVIDERS)}.")
        add.add_argument("--label", required=True, help="A name for the key, unique per team and provider.")
        add.add_argument("--base-url", default="", help="Override the provider's API base URL (http or https).")
        add.add_argument("--models", default="", help="Comma-separated model ids this key serves (gateways).")
        add.add_argument("--api-key-stdin", action="store_true", help="Read the API key from the first line of stdin.")
        listing = actions.add_parser("list", help="List a team's keys (masked).")
        listing.add_argument("--team", required=True, help="Team slug.")
        for name, what in (("disable", "Stop using a key (running jobs still finish)."), ("enable", "Use a key again.")):
            sub = actions.add_parser(name, help=what)
            sub.add_argument("key_id", metavar="ID", help="The key's id (as shown by `providerkeys list`).")
        actions.add_parser("rotate", help="Re-encrypt every key under the first FIELD_ENCRYPTION_KEYS key.")

    def handle(self, *args, action, **options):
        return getattr(self, f"handle_{action}")(**options)

    def _team(self, slug: str) -> Team:
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            raise bad_input(f"Unknown team {slug!r}. See `manage.py teams list`.")
        return team

    def _key(self, raw_id: str) -> ProviderKey:
        try:
            public_id = uuid.UUID(raw_id)
        except ValueError:
            raise bad_input(f"{raw_id!r} is not a key id (a UUID, as shown by `providerkeys list`).") from None
        key = ProviderKey.objects.select_related("team").filter(public_id=public_id).first()
        if key is None:
            raise bad_input(f"No provider key with id {public_id}.")
        return key

    def handle_add(self, *, team, provider, label, base_url, models, api_key_stdin, **options):
        team_obj = self._team(team)
        if provider not in PROVIDERS:
            raise bad_input(f"Unknown provider {provider!r}; known: {', '.join(PROVIDERS)}.")
        if api_key_stdin:
            stream = options.get("stdin") or sys.stdin
            api_key = stream.readline().strip()
            source = "stdin"
        else:
            api_key = os.environ.get("KILN_API_KEY", "").strip()
            source = "KILN_API_KEY"
        if not api_key:
            raise bad_input(f"No API key on {source}. Pipe it in with --api-key-stdin or set KILN_API_KEY "
                            "(never pass it as an argument).")
        try:
            key = keys.create_key(team=team_obj, provider=provider, label=label, api_key=api_key,
                                  base_url=base_url, models_override="\n".join(models.split(",")))
        except ValidationError as exc:
            problems = "; ".join(message for messages in exc.message_dict.values() for message in messages)
            raise bad_input(problems) from None
        self.stdout.write(f"Added {keys.provider_name(provider)} key {key.label!r} ({key.masked}) "
                          f"to {team_obj.slug}: id {key.public_id}")

    def handle_list(self, *, team, **_):
        team_obj = self._team(team)
        rows = list(keys.team_keys(team_obj))
        if not rows:
            self.stdout.write(f"{team_obj.slug} has no provider keys.")
            return
        self.stdout.write(f"{'ID':<36}  {'PROVIDER':<10} {'LABEL':<20} {'KEY':<8} {'ACTIVE':<6} {'LAST USED':<16} BASE URL")
        for key in rows:
            last_used = key.last_used.strftime("%Y-%m-%d %H:%M") if key.last_used else "never"
            self.stdout.write(f"{key.public_id}  {key.provider:<10} {key.label[:20]:<20} {key.masked:<8} "
                              f"{'yes' if key.is_active else 'no':<6} {last_used:<16} {key.base_url or '-'}")

    def handle_disable(self, *, key_id, **_):
        key = self._key(key_id)
        keys.set_active(key, False)
        self.stdout.write(f"Disabled {key.label!r} ({key.masked}) of {key.team.slug}.")

    def handle_enable(self, *, key_id, **_):
        key = self._key(key_id)
        keys.set_active(key, True)
        self.stdout.write(f"Enabled {key.label!r} ({key.masked}) of {key.team.slug}.")

    def handle_rotate(self, **_):
        try:
            count = keys.rotate_all()
        except DecryptionError as exc:
            raise CommandError(str(exc), returncode=1) from None
        self.stdout.write(f"Re-encrypted {count} provider key{'s' if count != 1 else ''} under the first key.")

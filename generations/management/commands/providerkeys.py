"""``manage.py providerkeys add|list|default|disable|enable|test|rotate``: provider keys from the command line.

The API key is never taken from the command line (it would sit in the shell
history and in ``ps``): pipe it in with ``--api-key-stdin`` or set ``KILN_API_KEY``.

A provider's keys are in order: the default, then the fallbacks (``list`` shows it). A key
is added as a fallback unless ``--default``; ``default ID`` makes an existing key the default.
``test ID`` asks the provider something harmless with the key, as "Test key" on the keys page.

Exit status: 0 on success, 1 when rotation meets a key it cannot decrypt or a test finds
the key refused or its base URL wrong, 2 on bad input (unknown team, provider or key,
malformed URL, missing API key).
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
        actions = parser.add_subparsers(dest="action", metavar="{add,list,default,disable,enable,test,rotate}")
        actions.required = True
        add = actions.add_parser(
            "add", allow_abbrev=False, help="Add a key. The API key comes from stdin (--api-key-stdin) or KILN_API_KEY, never argv.")
        add.add_argument("--team", required=True, help="Team slug.")
        add.add_argument("--provider", required=True, help=f"One of: {', '.join(PROVIDERS)}.")
        add.add_argument("--label", required=True, help="A name for the key, unique per team and provider.")
        add.add_argument("--base-url", default="", help="Override the provider's API base URL (http or https).")
        add.add_argument("--models", default="", help="Comma-separated model ids this key serves (gateways).")
        add.add_argument("--api-key-stdin", action="store_true", help="Read the API key from the first line of stdin.")
        add.add_argument("--default", action="store_true",
                         help="Make it its provider's default key (else it is added as the last fallback).")
        listing = actions.add_parser("list", help="List a team's keys (masked), each provider's in order.")
        listing.add_argument("--team", required=True, help="Team slug.")
        for name, what in (("default", "Make a key its provider's default (the others follow in their order)."),
                           ("disable", "Stop using a key (running jobs still finish)."), ("enable", "Use a key again."),
                           ("test", "Ask the provider something harmless with a key and print its answer.")):
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

    def handle_add(self, *, team, provider, label, base_url, models, api_key_stdin, default=False, **options):
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
                                  base_url=base_url, models_override="\n".join(models.split(",")),
                                  make_default=default)
        except ValidationError as exc:
            problems = "; ".join(message for messages in exc.message_dict.values() for message in messages)
            raise bad_input(problems) from None
        self.stdout.write(f"Added {keys.provider_name(provider)} key {key.label!r} ({key.masked}) "
                          f"to {team_obj.slug} as {key.role.lower()}: id {key.public_id}")

    def handle_list(self, *, team, **_):
        team_obj = self._team(team)
        rows = list(keys.team_keys(team_obj))
        if not rows:
            self.stdout.write(f"{team_obj.slug} has no provider keys.")
            return
        self.stdout.write(f"{'ID':<36}  {'PROVIDER':<10} {'ORDER':<11} {'LABEL':<20} {'KEY':<8} {'ACTIVE':<6} "
                          f"{'LAST USED':<16} BASE URL")
        serving: dict[str, ProviderKey] = {}
        for key in rows:
            if key.is_active:
                serving.setdefault(key.provider, key)
            last_used = key.last_used.strftime("%Y-%m-%d %H:%M") if key.last_used else "never"
            self.stdout.write(f"{key.public_id}  {key.provider:<10} {key.role:<11} {key.label[:20]:<20} {key.masked:<8} "
                              f"{'yes' if key.is_active else 'no':<6} {last_used:<16} {key.base_url or '-'}")
            if key.last_error:
                self.stdout.write(f"{'':<38}key problem: {key.last_error[:200]}")
        for provider, key in serving.items():
            self.stdout.write(f"{keys.provider_name(provider)} is served by {key.label!r} ({key.role.lower()}).")

    def handle_default(self, *, key_id, **_):
        key = self._key(key_id)
        keys.make_default(key)
        self.stdout.write(f"{key.label!r} ({key.masked}) is now the default {keys.provider_name(key.provider)} key "
                          f"of {key.team.slug}{'' if key.is_active else ' (it is disabled: enable it to use it)'}.")

    def handle_test(self, *, key_id, **_):
        key = self._key(key_id)
        check = keys.test_key(key)
        self.stdout.write(f"{check.label}: {check.summary}")
        if check.call:
            timing = f" ({check.latency_ms} ms)" if check.latency_ms is not None else ""
            self.stdout.write(f"  asked: {check.call}{timing}")
        if check.answer:
            status = f"HTTP {check.status_code}: " if check.status_code else ""
            self.stdout.write(f"  answer: {status}{check.answer}")
        if check.problem:
            raise CommandError(f"The key has a problem: {check.problem}", returncode=1)

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

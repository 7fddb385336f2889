"""``manage.py generate``: make a generation from the command line, exactly as the studio does.

    manage.py generate --team acme --user ann@acme.test --model shark:alibaba/wan-2.7 \\
        --prompt "a kiln at dawn" --param duration=5 --input first_frame=frame.png --wait

It goes through ``generations.services.create_generation`` (same validation,
same messages, same credit reservation). Bad input exits with status 2.
``--wait`` waits for the Celery worker to finish the job (start one with
``celery -A project worker -B -Q default,poll,download``) and prints the final
status, what the ledger actually charged (a failed or cancelled job: "cost 0
credits · N reserved, refunded"; one held for review says so) and where the
media was stored; it exits 1 if the job did
not succeed or did not finish within ``--timeout`` seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.credits import services as credits
from accounts.models import Membership, Team
from generations.models import TERMINAL, Generation, InputRole, Status
from generations.providers.registry import PROVIDERS
from generations.services import GenerationRejected, InputSpec, create_generation, team_catalog

BAD_INPUT = 2


def bad(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_INPUT)


class Command(BaseCommand):
    help = "Create a generation as the studio would (same validation and credits); --wait for the result."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", required=True, help="Team slug.")
        parser.add_argument("--user", required=True, help="E-mail of the member who pays.")
        parser.add_argument("--model", required=True, help="MODEL or PROVIDER:MODEL (e.g. shark:openai/gpt-image-2).")
        parser.add_argument("--provider", help="Provider id, when the model id alone is ambiguous.")
        parser.add_argument("--operation", help="e.g. text-to-video, image-to-video (default: what the inputs fit).")
        parser.add_argument("--prompt", default="", help="The prompt.")
        parser.add_argument("--negative-prompt", default="", help="What to avoid (models that take one).")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="A model parameter; repeatable.")
        parser.add_argument("--input", action="append", default=[], metavar="[ROLE=]PATH",
                            help=f"An input file; ROLE is one of {', '.join(InputRole.values)}. Repeatable.")
        parser.add_argument("--idempotency-key", help="Repeat a run without making a second generation.")
        parser.add_argument("--wait", action="store_true", help="Wait for the worker to finish the job.")
        parser.add_argument("--timeout", type=float, default=900.0, help="Seconds to --wait (default 900).")

    def handle(self, *args, **opts) -> None:
        membership = self._membership(opts["team"], opts["user"])
        entry = self._entry(membership.team, opts["model"], opts["provider"])
        params = self._params(opts["param"])
        inputs = self._inputs(opts["input"])
        operation = opts["operation"] or self._operation(entry.model, inputs)
        files = []
        try:
            specs = []
            for role, path in inputs:
                fh = path.open("rb")
                files.append(fh)
                specs.append(InputSpec(role=role or self._default_role(entry.model, operation), upload=File(fh, name=path.name)))
            generation = create_generation(
                membership=membership, provider_id=entry.provider_id, model_id=entry.model.id, operation=operation,
                prompt=opts["prompt"], negative_prompt=opts["negative_prompt"], params=params, inputs=specs,
                idempotency_key=opts["idempotency_key"])
        except GenerationRejected as exc:
            lines = [message if field == "__all__" else f"{field}: {message}" for field, message in exc.errors.items()]
            raise bad("\n".join(["The generation was not created:", *lines])) from None
        finally:
            for fh in files:
                fh.close()
        self.stdout.write(f"{generation.public_id} {generation.status} · {entry.provider_name} {entry.model.label} "
                          f"· {operation} · estimate {generation.estimated_cost:,} credits")
        if opts["wait"]:
            self._wait(generation, opts["timeout"])

    # -- arguments -----------------------------------------------------------

    def _membership(self, slug: str, email: str) -> Membership:
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            raise bad(f"No team with the slug “{slug}”.")
        membership = (Membership.objects.select_related("team", "user")
                      .filter(team=team, user__email__iexact=email.strip()).first())
        if membership is None:
            raise bad(f"{email} is not a member of {team.name}.")
        return membership

    def _entry(self, team: Team, raw: str, provider: str | None):
        model_id = raw.strip()
        head, sep, tail = model_id.partition(":")
        if sep and head in PROVIDERS:
            if provider and provider != head:
                raise bad(f"--provider {provider} contradicts --model {raw}.")
            provider, model_id = head, tail
        catalog = team_catalog(team)
        matches = [e for e in catalog if e.model.id == model_id and (provider is None or e.provider_id == provider)]
        if not matches:
            usable = ", ".join(sorted({e.value for e in catalog})) or "none: the team has no active provider key"
            raise bad(f"{team.name} cannot use the model “{raw}”. Models available: {usable}.")
        if len(matches) > 1:
            raise bad(f"“{raw}” is served by several providers ({', '.join(e.provider_id for e in matches)}): "
                      "use PROVIDER:MODEL or --provider.")
        return matches[0]

    def _params(self, items: list[str]) -> dict[str, str]:
        params = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise bad(f"--param {item!r}: write KEY=VALUE.")
            params[key.strip()] = value
        return params

    def _inputs(self, items: list[str]) -> list[tuple[str | None, Path]]:
        inputs = []
        for item in items:
            role, sep, rest = item.partition("=")
            if sep and role in InputRole.values:
                path = Path(rest)
            else:
                role, path = None, Path(item)
            if not path.is_file():
                raise bad(f"--input {item!r}: no such file.")
            inputs.append((role, path))
        return inputs

    def _operation(self, model, inputs) -> str:
        """Without inputs: the model's first operation that needs none; with inputs: its first
        operation that takes every given role."""
        roles = {role for role, _ in inputs if role}
        for operation in model.operations:
            slots = model.inputs_for(operation)
            if not inputs and not any(slot.required for slot in slots):
                return operation
            if inputs and slots and roles <= {slot.role for slot in slots}:
                return operation
        return model.operations[0]

    def _default_role(self, model, operation: str) -> str:
        slots = model.inputs_for(operation)
        return slots[0].role if slots else InputRole.REFERENCE

    # -- waiting -------------------------------------------------------------

    def _wait(self, generation: Generation, timeout: float) -> None:
        started = time.monotonic()
        last = None
        while True:
            generation.refresh_from_db()
            if generation.status != last:
                progress = f" {generation.progress}%" if generation.progress is not None else ""
                self.stdout.write(f"… {generation.get_status_display().lower()}{progress}")
                last = generation.status
            if generation.status in TERMINAL:
                break
            if time.monotonic() - started > timeout:
                raise CommandError(f"Still {generation.status} after {timeout:.0f} s (is a Celery worker running?).",
                                   returncode=1)
            time.sleep(1.0)
        # What the ledger says it cost: a failed or cancelled job was refunded, whatever the estimate.
        self.stdout.write(f"{generation.status} · {credits.settlement(generation).describe()}")
        if generation.error:
            self.stdout.write(generation.error)
        for media in generation.media.all():
            try:
                where = media.file.path
            except NotImplementedError:  # remote storage: s3://bucket/key on S3, else its name
                locate = getattr(media.file.storage, "location_of", None)
                where = locate(media.file.name) if locate else media.file.name
            details = f"{media.mime_type}, {media.bytes:,} bytes, sha256 {media.sha256}"
            self.stdout.write(f"{where} ({details})")
        if generation.status != Status.SUCCEEDED:
            raise CommandError(f"The generation ended {generation.status}.", returncode=1)

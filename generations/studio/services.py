"""What the studio reuses of the team's earlier work: its recent prompts, and a result's seed.

Prompt history: the team's distinct prompts, newest first, searched as the member types
(case-insensitive "contains"). Every ``Prompt`` row is one submit, so the same text comes
back once per try; the rows are read newest first in small pages on the index
``prompt_team_created`` and folded by text until there are enough (at most ``HISTORY_SCAN``
rows). A search looks through the team's latest ``HISTORY_WINDOW`` prompts: a "contains" has
no index to use, and through a whole team's prompts a word nobody wrote took 0.7 s on
PostgreSQL for 100,000 of them, at every pause in the typing. The gallery's search (full
text, indexed) looks through everything.

Reuse seed: the seed a result was made with, so the studio can fix it for the next try.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from accounts.models import Membership
from generations.models import Generation, Prompt
from generations.providers.registry import model_label, provider_name, takes_seed

HISTORY_SIZE = 20
HISTORY_SCAN = 400        # Prompt rows read at most for one answer (newest first)
HISTORY_PAGE = 50
HISTORY_WINDOW = 5000     # the latest prompts a search looks through
MAX_HISTORY_QUERY = 200
SEED = "seed"


@dataclass
class HistoryItem:
    text: str
    author: str
    created: object
    models: list[str] = field(default_factory=list)
    prompt_id: int = 0


def prompt_history(membership: Membership, query: str = "", *, size: int = HISTORY_SIZE) -> list[HistoryItem]:
    """The team's ``size`` most recent distinct prompts containing ``query``, each with the
    models it went to and who wrote it last."""
    rows = (Prompt.objects.filter(team_id=membership.team_id).exclude(text="")
            .select_related("author").only("text", "created", "author__email", "author__name")
            .order_by("-created", "-id"))
    if query:
        rows = rows.filter(text__icontains=query)
        oldest = list(Prompt.objects.filter(team_id=membership.team_id).order_by("-created", "-id")
                      .values_list("created", flat=True)[HISTORY_WINDOW - 1:HISTORY_WINDOW])
        if oldest:
            rows = rows.filter(created__gte=oldest[0])
    items: dict[str, HistoryItem] = {}
    read, last = 0, None
    while len(items) < size and read < HISTORY_SCAN:
        page = rows
        if last is not None:
            page = rows.filter(Q(created__lt=last.created) | Q(created=last.created, id__lt=last.id),
                               created__lte=last.created)
        batch = list(page[:HISTORY_PAGE])
        for prompt in batch:
            if prompt.text not in items and len(items) < size:
                author = prompt.author.get_short_name() if prompt.author else "former member"
                items[prompt.text] = HistoryItem(prompt.text, author, prompt.created, prompt_id=prompt.pk)
        read += len(batch)
        if len(batch) < HISTORY_PAGE:
            break
        last = batch[-1]
    found = list(items.values())
    by_prompt = {item.prompt_id: item for item in found}
    for prompt_id, provider, model in (Generation.objects.filter(prompt_id__in=by_prompt)
                                       .order_by("created", "id").values_list("prompt_id", "provider", "model")):
        label = model_label(provider, model)
        if label not in by_prompt[prompt_id].models:
            by_prompt[prompt_id].models.append(label)
    return found


# ---------------------------------------------------------------------------
# Seeds


def reported_seed(raw_payload) -> int | None:
    """The seed the provider says it used, where its answer names one (``seed`` at the top of
    its last answer or in one of its objects). None of the four documented APIs names one
    today: looked for, so a provider that starts to is believed over the request."""
    candidates = [raw_payload] if isinstance(raw_payload, dict) else []
    if candidates:
        candidates += [v for v in raw_payload.values() if isinstance(v, dict)]
    for candidate in candidates:
        value = candidate.get(SEED)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


@dataclass(frozen=True)
class SeedUsed:
    value: int | None     # None: a random seed nobody reported
    source: str           # "reported", "requested" or "" (unknown)


def seed_used(generation: Generation) -> SeedUsed:
    """The seed to repeat ``generation`` with: the provider's own figure when it gave one,
    else the one asked for; unknown when a random seed was asked for (-1 or none)."""
    reported = reported_seed(generation.raw_payload)
    if reported is not None:
        return SeedUsed(reported, "reported")
    requested = (generation.params or {}).get(SEED)
    if isinstance(requested, int) and not isinstance(requested, bool) and requested >= 0:
        return SeedUsed(requested, "requested")
    return SeedUsed(None, "")


def seed_shown(generation: Generation) -> SeedUsed | None:
    """The seed the detail page shows; None, without reading the (deferred, possibly large)
    ``raw_payload``, when the model takes no seed."""
    if not takes_seed(generation.provider, generation.model, generation.operation):
        return None
    return seed_used(generation)


def seed_notice(generation: Generation, seed: SeedUsed) -> str:
    """What the studio says when it opens to reuse ``generation``'s seed."""
    provider = provider_name(generation.provider)
    if seed.value is None:
        return (f"This result asked for a random seed and {provider} did not report the one it used, "
                "so its seed cannot be repeated: the seed stays random.")
    why = f"the seed {provider} reported using" if seed.source == "reported" else "the seed it was made with"
    return f"Seed {seed.value} is fixed: {why}. Same model, prompt and settings as the result."

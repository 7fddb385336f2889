"""A deliberately broken adapter for the poison-job test: Shark's, except that
reading a job's status always crashes (a bug in an adapter, as the engine sees it)."""

from generations.providers.shark import SharkProvider


class PoisonProvider(SharkProvider):
    id = "poison"
    name = "Poison"

    def poll(self, job_id, credentials, *, model):
        raise KeyError("output")  # the kind of crash a changed provider payload causes

"""What the live region says of a job: the model's display name and its state, a failure in the provider's words."""

from generations.gallery.templatetags import announcement
from generations.models import Status
from tests.generations.gallery.conftest import make_generation


def test_a_state_in_words(team, owner):
    g = make_generation(team, owner, provider="shark", model="alibaba/wan-2.7", status=Status.SUCCEEDED)
    assert announcement(g) == "Wan 2.7: succeeded"
    g.status = Status.DOWNLOADING
    assert announcement(g) == "Wan 2.7: saving results"


def test_a_failure_in_the_providers_words(team, owner):
    g = make_generation(team, owner, status=Status.FAILED, error="Content was blocked by the safety system.")
    assert announcement(g) == "GPT Image 2 failed: Content was blocked by the safety system."
    g.error = "Upstream error"
    assert announcement(g) == "GPT Image 2 failed: Upstream error."

"""A generation made from a prompt template (Sealink) is named by its template, not "(no prompt)"."""

from generations.models import Prompt
from tests.generations.gallery.conftest import make_generation


def test_a_template_generation_is_named_by_its_template_on_the_card_and_the_detail_page(owner_client, team, owner):
    g = make_generation(team, owner, prompt="", status="succeeded")
    g.params = {"template_id": "tpl_sunset", "variables": "place=Lisbon"}
    g.save(update_fields=["params"])

    card = owner_client.get("/gallery/").content.decode()
    detail = owner_client.get(f"/g/{g.public_id}/").content.decode()

    assert "Prompt template “tpl_sunset”" in card
    assert "Prompt template “tpl_sunset”" in detail
    assert "(no prompt)" not in card + detail


def test_a_generation_with_neither_prompt_nor_template_says_so(owner_client, team, owner):
    g = make_generation(team, owner, prompt="", status="succeeded")
    assert Prompt.objects.get(pk=g.prompt_id).text == ""

    assert "(no prompt)" in owner_client.get(f"/g/{g.public_id}/").content.decode()

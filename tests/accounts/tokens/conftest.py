"""Memberships to make tokens for: the owner's, a teammate's, an admin's and an outsider's."""

import pytest

from accounts.models import Membership, Role
from tests.conftest import make_member


@pytest.fixture
def owner_m(owner):
    return Membership.objects.get(user=owner)


@pytest.fixture
def mate_m(teammate):
    return Membership.objects.get(user=teammate)


@pytest.fixture
def admin_user(team):
    return make_member(team, "admin@acme.test", Role.ADMIN)


@pytest.fixture
def admin_m(admin_user):
    return Membership.objects.get(user=admin_user)


@pytest.fixture
def outsider_m(outsider):
    return Membership.objects.get(user=outsider)

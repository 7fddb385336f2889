"""Boards reuse the gallery's fixtures: results made as rows, with small real files."""

from tests.generations.gallery.conftest import foreign, image, video  # noqa: F401

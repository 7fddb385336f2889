"""A team's boards and what is on them.

A board is a shared folder: every member sees it and may add or remove results. A result
may sit on any number of boards; removing it from one, or deleting the board, never touches
the result itself."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

NAME_MAX_LENGTH = 80


class Board(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="boards")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created = models.DateTimeField(default=timezone.now)
    generations = models.ManyToManyField("generations.Generation", through="BoardItem", related_name="boards")

    class Meta:
        ordering = [Lower("name"), "id"]
        constraints = [
            # "Moodboard" and "moodboard" are one board to a person picking from a list.
            models.UniqueConstraint("team", Lower("name"), name="unique_board_name_per_team"),
        ]

    def __str__(self):
        return self.name


class BoardItem(models.Model):
    """One result on one board: who put it there and when (the cover is the latest added)."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="items")
    generation = models.ForeignKey("generations.Generation", on_delete=models.CASCADE, related_name="board_items")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["board", "generation"], name="unique_board_item")]
        indexes = [models.Index(fields=["generation"], name="board_item_generation")]

    def __str__(self):
        return f"{self.board_id} ∋ {self.generation_id}"

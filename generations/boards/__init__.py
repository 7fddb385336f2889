"""Boards: named collections of a team's results (a shared folder), shown in the gallery
and shareable by link."""

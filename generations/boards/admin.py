"""Boards in the Django admin: to see what a team has collected, for an operator (members
manage their boards in the app)."""

from django.contrib import admin
from django.db.models import Count

from generations.boards.models import Board, BoardItem


class BoardItemInline(admin.TabularInline):
    model = BoardItem
    fields = ("generation", "added_by", "added_at")
    readonly_fields = fields
    raw_id_fields = ("generation",)
    extra = 0
    can_delete = False


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "created_by", "items", "created")
    list_filter = ("team",)
    list_select_related = ("team", "created_by")
    search_fields = ("name", "=public_id", "created_by__email")
    fields = ("public_id", "team", "name", "created_by", "created")
    readonly_fields = ("public_id", "team", "created_by", "created")
    inlines = [BoardItemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_count=Count("items"))

    def has_add_permission(self, request):
        return False

    @admin.display(description="Items", ordering="item_count")
    def items(self, obj):
        return obj.item_count

"""Registered templates in the Django admin, with the team page's rules (``forms.py``):
the template id's format, one id per team, Sealink's variable names once per template."""

from django.contrib import admin

from generations.prompt_templates.forms import (
    BaseVariableFormSet,
    PromptTemplateForm,
    TemplateVariableForm,
)
from generations.prompt_templates.models import PromptTemplate, TemplateVariable


class PromptTemplateAdminForm(PromptTemplateForm):
    class Meta(PromptTemplateForm.Meta):
        fields = ("team", "template_id", "name", "description")


class TemplateVariableInline(admin.TabularInline):
    model = TemplateVariable
    form = TemplateVariableForm
    formset = BaseVariableFormSet
    fields = ("position", "name", "label", "hint", "required")
    extra = 1


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    form = PromptTemplateAdminForm
    inlines = (TemplateVariableInline,)
    list_display = ("name", "template_id", "team", "variable_names", "updated")
    list_filter = ("team",)
    list_select_related = ("team",)
    search_fields = ("name", "template_id", "description", "team__name", "team__slug")
    autocomplete_fields = ("team",)
    readonly_fields = ("public_id", "provider", "created_by", "created", "updated")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("variables")

    @admin.display(description="Variables")
    def variable_names(self, obj):
        return ", ".join(v.name for v in obj.variables.all()) or "—"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)



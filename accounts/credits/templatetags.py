"""Credits formatting for templates: ``{% load credits_tags %}``.

``{{ n|credits }}`` → "12,345"; ``{{ n|signed_credits }}`` → "+12,345" / "-12,345";
``{{ n|usd }}`` → "$1.23" (1 USD = 10,000 credits); ``{{ rate|percent }}`` → "12.5%".
"""

from django import template

from accounts.credits.models import CREDITS_PER_USD

register = template.Library()


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@register.filter
def credits(value) -> str:
    n = _int(value)
    if n is None:
        return ""
    return f"-{abs(n):,}" if n < 0 else f"{n:,}"


@register.filter
def signed_credits(value) -> str:
    n = _int(value)
    if n is None:
        return ""
    if n == 0:
        return "0"
    return f"+{n:,}" if n > 0 else f"-{abs(n):,}"


@register.filter
def usd(value) -> str:
    n = _int(value)
    if n is None:
        return ""
    dollars = abs(n) / CREDITS_PER_USD
    text = f"${dollars:,.2f}" if dollars >= 0.01 or n == 0 else f"${dollars:,.4f}"
    return f"-{text}" if n < 0 else text


@register.filter
def percent(value) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.1f}%"


@register.filter
def model_name(generation) -> str:
    """"Shark AI · GPT Image 2" for a generation (the catalog's labels; the raw id if unknown)."""
    from accounts.credits.usage import model_label, provider_label

    return f"{provider_label(generation.provider)} · {model_label(generation.provider, generation.model)}"

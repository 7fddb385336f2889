"""Views, one module per area: studio, gallery (and media), share links, webhooks."""

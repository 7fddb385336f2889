"""The test provider's control API: ``POST /_control/<action>`` with JSON. One gunicorn worker
process serves it, so ``STATE`` (how ID tokens misbehave) is one dict."""

import json

from django.contrib.auth.models import Group, User
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from oauth2_provider.models import AccessToken, Application, RefreshToken

STATE: dict = {}


def _user(email):
    return User.objects.get(email=email)


@csrf_exempt
@require_POST
def action(request, name):
    body = json.loads(request.body or "{}")
    if name == "person":
        user, _ = User.objects.update_or_create(username=body["email"], defaults={"email": body["email"],
                                                                                  "first_name": body.get("name", "")})
        user.set_password(body["password"])
        user.is_active = True
        user.save()
        group, _ = Group.objects.get_or_create(name="unverified-email")
        (user.groups.remove if body.get("email_verified", True) else user.groups.add)(group)
    elif name == "client":
        Application.objects.filter(client_id=body["client_id"]).delete()
        Application.objects.create(
            name=body["client_id"], client_id=body["client_id"], client_secret=body["secret"], hash_client_secret=True,
            client_type=Application.CLIENT_CONFIDENTIAL, authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris=" ".join(body["redirect_uris"]), algorithm=Application.RS256_ALGORITHM, skip_authorization=True)
    elif name == "rename":  # the company gives the person a new address (username and e-mail)
        User.objects.filter(email=body["email"]).update(email=body["new_email"], username=body["new_email"])
    elif name == "disable":
        User.objects.filter(email=body["email"]).update(is_active=False)
    elif name == "revoke":
        user = _user(body["email"])
        RefreshToken.objects.filter(user=user).delete()
        AccessToken.objects.filter(user=user).delete()
    elif name == "misbehave":
        STATE.clear()
        STATE.update(body)
    else:
        return JsonResponse({"error": f"unknown action {name}"}, status=404)
    return JsonResponse({"ok": True})

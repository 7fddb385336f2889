import base64
import json
import time

from jwcrypto import jwk, jwt
from oauth2_provider.oauth2_validators import OAuth2Validator

from tests.oidc_provider import control

UNVERIFIED_GROUP = "unverified-email"


class Validator(OAuth2Validator):
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "email": "email", "email_verified": "email",
                        "name": "profile"}

    def get_additional_claims(self, request):
        user = request.user
        return {"email": user.email,
                "email_verified": not user.groups.filter(name=UNVERIFIED_GROUP).exists(),
                "name": user.get_full_name() or user.username}

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        state = control.STATE
        if state.get("audience"):
            claims["aud"] = state["audience"]  # finalize_id_token lets these win over oauthlib's
        if state.get("expired"):  # as from a provider whose clock is an hour behind
            claims["exp"] = int(time.time()) - 3600
        if state.get("nonce"):  # an ID token minted for another sign-in attempt
            claims["nonce"] = state["nonce"]
        return claims, expiration_time

    def finalize_id_token(self, id_token, token, token_handler, request):
        signed = super().finalize_id_token(id_token, token, token_handler, request)
        if not control.STATE.get("foreign_key"):
            return signed
        # The same header (its kid names the provider's key) and claims, signed by another key.
        header, claims = (base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in signed.split(".")[:2])
        forged = jwt.JWT(header=json.loads(header), claims=json.loads(claims))
        forged.make_signed_token(jwk.JWK.generate(kty="RSA", size=2048))
        return forged.serialize()

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        """A person the provider disabled gets no new tokens (as Okta, Entra, Google do)."""
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        return request.user.is_active


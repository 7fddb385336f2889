from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and credits"

    def ready(self):
        from accounts.oidc import signals  # noqa: F401 (connects the sign-in receiver)

from django.apps import AppConfig


class TrialsConfig(AppConfig):
    name = "trials"
    verbose_name = "Trials and evolution"

    def ready(self) -> None:
        from trials import receivers

        receivers.connect()

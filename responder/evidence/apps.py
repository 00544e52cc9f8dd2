from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    name = "responder.evidence"
    label = "evidence"
    verbose_name = "Evidence"

from django.apps import AppConfig


class RecordingConfig(AppConfig):
    name = "responder.recording"
    label = "recording"
    verbose_name = "Recording"

from django.db import models


class Capability(models.TextChoices):
    LIVE = "live", "Live video"
    RECORDED = "recorded", "Recorded video"
    EXPORT = "export", "Export clips"
    ALARMS = "alarms", "Door alarms and events"
    INCIDENTS = "incidents", "Open and run incidents"
    MANAGE = "manage", "Manage cameras, maps and doors"


# The capabilities that put a camera on a user's map.
VIEWING = (Capability.LIVE, Capability.RECORDED)

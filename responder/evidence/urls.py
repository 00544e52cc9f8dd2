from django.urls import path

from responder.evidence import api

urlpatterns = [
    path("evidence/", api.ExportList.as_view(), name="evidence-list"),
    path("evidence/<int:export_id>", api.ExportDetail.as_view(), name="evidence-detail"),
    path("evidence/<int:export_id>/download", api.download, name="evidence-download"),
    path("evidence/<int:export_id>/shares", api.ShareList.as_view(), name="evidence-shares"),
    path(
        "evidence/<int:export_id>/shares/<int:share_id>",
        api.ShareDetail.as_view(),
        name="evidence-share-detail",
    ),
]

from django.urls import path
from django.views.decorators.http import conditional_page

from maps import views
from maps.api import CampusTreeView

# An ETag lets a tablet on a weak link revalidate the whole tree with a 304.
urlpatterns: list = [
    path("campuses/", conditional_page(CampusTreeView.as_view()), name="campus-tree")
]

# Under MEDIA_URL, where the plans' FieldFile.url points: the names the PWA caches.
plan_urlpatterns: list = [path("plans/<str:name>", views.plan, name="plan")]

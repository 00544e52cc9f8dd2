from django.urls import path
from django.views.decorators.http import conditional_page

from responder.maptree.api import CampusTreeView

# An ETag lets a tablet on a weak link revalidate the whole tree with a 304.
urlpatterns: list = [
    path("campuses/", conditional_page(CampusTreeView.as_view()), name="campus-tree")
]

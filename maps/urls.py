from django.urls import path

from maps import views

# The campus tree (places with their devices) is responder/maptree/urls.py.
urlpatterns: list = []

# Under MEDIA_URL, where the plans' FieldFile.url points: the names the PWA caches.
plan_urlpatterns: list = [path("plans/<str:name>", views.plan, name="plan")]

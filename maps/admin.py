from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Count, ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString

from maps.models import Building, Campus, District, Floor


class FloorChoiceField(ModelChoiceField):
    """Every campus has a "Main Building – 1st Floor": the campus tells them apart."""

    def label_from_instance(self, floor: Floor) -> str:
        return f"{floor.building.campus} › {floor.building.name} › {floor.name}"


class PlacedAdmin(admin.ModelAdmin):
    """For things placed on a floor plan: floors labelled campus › building › floor, read at once."""

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name == "floor":
            kwargs["queryset"] = Floor.objects.select_related("building__campus").order_by(
                "building__campus__name", "building__name", "level"
            )
            kwargs["form_class"] = FloorChoiceField
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PlanPlacementMedia:
    js = ["maps/plan_placement.js"]
    css = {"all": ["maps/plan_placement.css"]}


def plan_placement(config: dict[str, Any], *, help_text: str) -> SafeString:
    """The clickable plan preview; maps/plan_placement.js reads `config` and does the rest.

    config: "floors" (the form's floor select picks the plan, a click sets its x and y), or
    "plan" and "prefixes" (a fixed plan, a click sets the x and y of the chosen inline row).
    """
    context = {"config": json.dumps(config), "help_text": help_text}
    return render_to_string("maps/admin/plan_placement.html", context)


def plan_of(field_file: Any, width: int | None, height: int | None) -> dict | None:
    if not field_file or not width or not height:
        return None
    return {"url": field_file.url, "width": width, "height": height}


def floor_plans() -> list[dict]:
    return [
        {"id": floor.id, "building": floor.building_id, "label": floor.name, **plan}
        for floor in Floor.objects.only(
            "id", "building", "name", "plan", "plan_width", "plan_height"
        )
        if (plan := plan_of(floor.plan, floor.plan_width, floor.plan_height))
    ]


@admin.register(District)
class DistrictAdmin(admin.ModelAdmin):
    list_display = ["name"]


class BuildingInline(admin.TabularInline):
    model = Building
    fields = ["name", "site_x", "site_y"]
    extra = 0
    show_change_link = True


@admin.register(Campus)
class CampusAdmin(admin.ModelAdmin):
    list_display = ["name", "short_name", "district", "building_count"]
    search_fields = ["name", "short_name"]
    list_filter = ["district"]
    readonly_fields = ["site_plan_width", "site_plan_height", "site_plan_preview"]
    inlines = [BuildingInline]
    Media = PlanPlacementMedia

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campus]:
        return super().get_queryset(request).annotate(building_count=Count("buildings"))

    @admin.display(description="buildings", ordering="building_count")
    def building_count(self, campus: Campus) -> int:
        return campus.building_count  # type: ignore[attr-defined]  # get_queryset annotates it

    @admin.display(description="Place the buildings")
    def site_plan_preview(self, campus: Campus) -> str:
        plan = plan_of(campus.site_plan, campus.site_plan_width, campus.site_plan_height)
        if plan is None:
            return "Upload a site plan and save to place the buildings on it."
        config = {
            "plan": plan,
            "prefixes": [{"prefix": "buildings", "x": "site_x", "y": "site_y"}],
        }
        return plan_placement(
            config, help_text="Pick a building's row, then click the plan or drag its pin."
        )


@admin.register(Building)
class BuildingAdmin(admin.ModelAdmin):
    list_display = ["name", "campus", "site_x", "site_y"]
    list_filter = ["campus"]
    search_fields = ["name", "campus__name", "campus__short_name"]
    list_select_related = ["campus"]


@admin.register(Floor)
class FloorAdmin(admin.ModelAdmin):
    list_display = ["name", "campus", "building_name", "level", "plan_size"]
    list_filter = ["building__campus", "building"]
    search_fields = ["name", "building__name", "building__campus__name"]
    list_select_related = ["building__campus"]
    ordering = ["building__campus__name", "building__name", "level"]
    autocomplete_fields = ["building"]
    readonly_fields = ["plan_width", "plan_height", "plan_preview"]
    # cameras/admin.py and accesslog/admin.py add their rows (places import no devices).
    inlines = []
    Media = PlanPlacementMedia

    @admin.display(description="campus", ordering="building__campus__name")
    def campus(self, floor: Floor) -> str:
        return str(floor.building.campus)

    @admin.display(description="building", ordering="building__name")
    def building_name(self, floor: Floor) -> str:
        return floor.building.name

    @admin.display(description="plan size")
    def plan_size(self, floor: Floor) -> str:
        return format_html("{} × {}", floor.plan_width, floor.plan_height)

    @admin.display(description="Place cameras and doors")
    def plan_preview(self, floor: Floor) -> str:
        plan = plan_of(floor.plan, floor.plan_width, floor.plan_height)
        if plan is None:
            return "Save the floor with its plan to place cameras and doors on it."
        prefixes = [
            {
                "prefix": "cameras",
                "x": "x",
                "y": "y",
                "heading": "heading",
                "fov": "field_of_view",
            },
            {"prefix": "doors", "x": "x", "y": "y"},
        ]
        return plan_placement(
            {"plan": plan, "prefixes": prefixes},
            help_text="Pick a camera's or door's row below, then click the plan or drag its pin.",
        )

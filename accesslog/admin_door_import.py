"""The admin's *Import doors…* page for one access system: a preview (GET), then Apply
(POST) of exactly the previewed plan, through accesslog.door_import.

Used by AccessSystemAdmin in accesslog/admin.py.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from accesslog.door_import import (
    ControllerSilent,
    CredentialsMissing,
    DoorImportRefused,
    DoorPlan,
    PlanChanged,
    doors_import,
)
from accesslog.models import AccessSystem
from maps.models import Building
from responder.core.access import signed_in

REFUSAL_STATUS = {CredentialsMissing: 503, ControllerSilent: 502, PlanChanged: 409}


class BuildingChoice(forms.ModelChoiceField):
    def label_from_instance(self, building: Building) -> str:
        return f"{building.campus} / {building.name}"


class PreviewForm(forms.Form):
    building = BuildingChoice(
        Building.objects.select_related("campus").order_by("campus__name", "name"),
        required=False,
        empty_label="(none yet)",
        help_text="Where new doors go; place each on its floor plan after.",
    )


class ApplyForm(PreviewForm):
    plan = forms.RegexField(
        regex=r"^[0-9a-f]{64}$",
        widget=forms.HiddenInput,
        error_messages={"required": "Preview the import first, then apply it."},
    )


def door_import_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, system: AccessSystem
) -> HttpResponse:
    applying = request.method == "POST"
    form = ApplyForm(request.POST) if applying else PreviewForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return _page(model_admin, request, system, form=form, status=400)
    building = form.cleaned_data.get("building") if form.is_bound else None
    try:
        plan = doors_import(
            system=system,
            building=building,
            dry_run=not applying,
            expected=form.cleaned_data["plan"] if applying else "",
            by=signed_in(request.user),
            request=request,
        )
    except PlanChanged as changed:
        return _page(model_admin, request, system, form=form, plan=changed.plan, refusal=changed)
    except DoorImportRefused as refused:
        return _page(model_admin, request, system, form=form, refusal=refused)
    if not applying:
        return _page(model_admin, request, system, form=form, plan=plan)
    counts = plan.counts()
    model_admin.message_user(
        request,
        f"{system}: created {counts['created']}, renamed {counts['renamed']}, re-keyed "
        f"{counts['rekeyed']}, kept {counts['kept']} door(s); linked "
        f"{counts['events_linked']} stored event(s).",
        messages.SUCCESS,
    )
    doors = reverse("admin:accesslog_door_changelist")
    return HttpResponseRedirect(f"{doors}?system__id__exact={system.pk}")


def _page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    system: AccessSystem,
    *,
    form: forms.Form,
    plan: DoorPlan | None = None,
    refusal: DoorImportRefused | None = None,
    status: int | None = None,
) -> HttpResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Import doors from {system}",
        "system": system,
        "form": form if not isinstance(form, ApplyForm) else PreviewForm(form.data),
        "plan": plan,
        "refusal": refusal,
        "problems": [problem for problems in form.errors.values() for problem in problems],
    }
    if status is None:
        status = REFUSAL_STATUS.get(type(refusal), 400) if refusal else 200
    response = TemplateResponse(
        request, "accesslog/admin/door_import.html", context, status=status
    )
    add_never_cache_headers(response)  # a preview is of one moment
    return response

from __future__ import annotations

from typing import Any

from django import forms

from cameras.models import Camera, stream_credentials_move

MAX_IMPORT_BYTES = 2 * 1024 * 1024


class CameraAdminForm(forms.ModelForm):
    """Credentials are write-only: the stored ones are never sent to the browser."""

    username = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Write-only. Leave blank to keep the stored value.",
    )
    password = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the stored value.",
    )
    clear_credentials = forms.BooleanField(
        required=False, help_text="Remove the stored username and password."
    )

    class Meta:
        model = Camera
        fields = [
            "name", "enabled", "vendor", "model", "tags", "building", "floor", "x", "y",
            "heading", "field_of_view", "main_stream_url", "sub_stream_url", "username",
            "password",
        ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("username", "password"):
            self.initial.pop(name, None)
            if getattr(self.instance, name, None):
                self.fields[name].help_text = "A value is stored. " + self.fields[name].help_text

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean returns
        self._move_url_credentials(cleaned)
        for name in ("username", "password"):
            if cleaned.get("clear_credentials"):
                cleaned[name] = None
            elif not cleaned.get(name):
                cleaned[name] = getattr(self.instance, name, None)
        return cleaned

    def _move_url_credentials(self, cleaned: dict[str, Any]) -> None:
        """user:password@ in a stream URL moves to the encrypted fields (URLs are stored plain)."""
        try:
            moved = stream_credentials_move(
                main=cleaned.get("main_stream_url") or "",
                sub=cleaned.get("sub_stream_url") or "",
                username=cleaned.get("username"),
                password=cleaned.get("password"),
            )
        except forms.ValidationError as error:
            self.add_error("main_stream_url", error)
            return
        if moved.carried:
            cleaned["main_stream_url"], cleaned["sub_stream_url"] = moved.main, moved.sub
            cleaned["username"], cleaned["password"] = moved.username, moved.password


class CameraImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, first line the column names.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self) -> Any:
        file = self.cleaned_data["file"]
        if file.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError("The file is larger than 2 MB.")
        return file

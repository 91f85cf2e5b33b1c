"""The submit form of /directives/: the fields an operator types, turned into the arguments of
``workers.services.directives.directive_submit`` (which checks the rules, for every way in).

The form only parses: lines into lists, ``key=value`` lines into metadata, ``name=verifier``
lines into acceptance checks (as ``manage.py directive_submit --metadata/--accept`` take
them). What the service refuses (``Rejected``) comes back onto the field it names.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms

from workers.domain import input_rules
from workers.errors import Rejected
from workers.models import Directive

# The service's error keys that are not a field of the form by that name.
FIELD_OF_ERROR = {"tasks": None, "organization": None, "idempotency_key": None}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _pairs(text: str, *, what: str) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(_lines(text), start=1):
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise forms.ValidationError(f"Line {number} is not {what}: {line[:80]!r}.")
        pairs.append((name.strip(), value.strip()))
    return pairs


class DirectiveSubmitForm(forms.Form):
    title = forms.CharField(max_length=Directive._meta.get_field("title").max_length)
    body = forms.CharField(
        required=False,
        max_length=input_rules.MAX_BODY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What to do, in as many words as it takes.",
    )
    risk = forms.ChoiceField(choices=Directive.Risk.choices, initial=Directive.Risk.MEDIUM)
    constraints = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One constraint a line.",
    )
    metadata = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=(
            "One key=value a line: requires_code_write=true, required_capability=review, "
            "target_child=<node>, decompose=true, task_class=…"
        ),
    )
    acceptance = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=(
            "One check a line, name=verifier: the verifier is one an admin registered "
            "(its command runs in the task workspace)."
        ),
    )
    # Submitting the same form twice (a double click, a resent POST) gives one directive.
    form_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("form_key", new_form_key())

    def clean_constraints(self) -> list[str]:
        return _lines(self.cleaned_data["constraints"])

    def clean_metadata(self) -> dict[str, str]:
        metadata = dict(_pairs(self.cleaned_data["metadata"], what="key=value"))
        if problems := input_rules.metadata_errors(metadata):
            raise forms.ValidationError(problems)
        return metadata

    def clean_acceptance(self) -> list[dict[str, Any]]:
        checks = _pairs(self.cleaned_data["acceptance"], what="name=verifier")
        for name, verifier in checks:
            if not verifier:
                raise forms.ValidationError(f"The check {name!r} names no verifier.")
        return [
            {"name": name, "description": "", "verifier": verifier} for name, verifier in checks
        ]

    def submission(self) -> dict[str, Any]:
        """The service's keyword arguments (after ``is_valid``)."""
        data = self.cleaned_data
        return {
            "title": data["title"],
            "body": data["body"],
            "risk": data["risk"],
            "constraints": data["constraints"],
            "metadata": data["metadata"],
            "acceptance": data["acceptance"],
        }

    def add_rejection(self, rejected: Rejected) -> None:
        """Put each of the service's messages on the field it names (the rest on top)."""
        for key, messages in rejected.errors.items():
            field = FIELD_OF_ERROR.get(key, key)
            for message in messages:
                self.add_error(field if field in self.fields else None, message)

    def renew_key(self) -> None:
        """A fresh key for the next submission (the form was used for another directive)."""
        data = dict(self.data.items())
        data["form_key"] = new_form_key()
        self.data = data


def new_form_key() -> str:
    return f"form:{uuid.uuid4()}"

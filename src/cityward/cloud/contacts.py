"""Who the account's security alarms reach: the e-mail addresses of a city's incident-contacts
record (CW-GOV-04), validated by the inventory's own model so both read the file the same way."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from cityward.device import IncidentContacts
from cityward.errors import CitywardError
from cityward.yamlfile import load_yaml


def load_contacts(path: Path) -> IncidentContacts:
    """The record at `path`, or one CitywardError line naming the file and the first bad field."""
    if not path.is_file():
        raise CitywardError(f"{path}: incident-contacts record not found")
    data = load_yaml(path)  # raises CitywardError lines of its own for broken YAML
    if not isinstance(data, dict):
        raise CitywardError(f"{path}: field '(document)': expected a mapping")
    try:
        return IncidentContacts.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "(document)"
        raise CitywardError(f"{path}: field '{where}': {err.get('msg', 'invalid')}") from None


def alert_emails(path: Path) -> list[str]:
    """The record's e-mail addresses, in the record's order, each once (case-insensitively)."""
    path = Path(path)
    contacts = load_contacts(path).contacts
    emails: dict[str, str] = {}
    for contact in contacts:
        if contact.email:
            emails.setdefault(contact.email.lower(), contact.email)
    if not emails:
        raise CitywardError(f"{path}: field 'contacts': no contact has an e-mail address; the cloud "
                            "account's security alarms must reach a person")
    return list(emails.values())

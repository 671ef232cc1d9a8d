"""Validate ``CITATION.cff`` against the vendored Citation File Format 1.2.0 schema.

The schema lives in ``schemas/cff-1.2.0.schema.json`` (see ``schemas/README.md``
for where the copy came from).
"""

import copy
import datetime
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from jsonschema import validators

ROOT = Path(__file__).parent.parent
CITATION = ROOT / "CITATION.cff"
SCHEMA = ROOT / "schemas" / "cff-1.2.0.schema.json"


def _dates_to_str(obj):
    """Recursively replace ``datetime.date`` objects by ISO-8601 strings.

    YAML 1.1 (and hence ``yaml.safe_load``) resolves an unquoted scalar such as
    ``2026-11-24`` to a ``datetime.date``, but the CFF schema types dates as
    JSON strings (``"type": "string", "format": "date"``), so a perfectly valid
    CITATION.cff with an unquoted ``date-released`` would be rejected with
    "is not of type 'string'". The schema itself says so in its ``date``
    definition: "it is necessary to cast YAML 'date' objects to string objects
    when validating against this schema". We therefore convert every date back
    to its ISO string before validation. (``datetime.datetime`` is a subclass of
    ``datetime.date``; CFF has no timestamps, so it is handled the same way and
    would then fail the schema's date pattern, as it should.)
    """
    if isinstance(obj, datetime.date):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {key: _dates_to_str(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_dates_to_str(item) for item in obj]
    return obj


def _load_citation():
    with CITATION.open(encoding="utf-8") as fh:
        return _dates_to_str(yaml.safe_load(fh))


def _validator():
    with SCHEMA.open(encoding="utf-8") as fh:
        schema = json.load(fh)
    # Pick the validator class from the schema's own "$schema" (draft-07 for
    # CFF 1.2.0) instead of hard-coding one; default=None makes an unknown
    # draft fail loudly rather than silently falling back to the latest draft.
    cls = validators.validator_for(schema, default=None)
    assert cls is jsonschema.Draft7Validator, cls
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _errors(instance):
    return sorted(_validator().iter_errors(instance), key=lambda e: list(e.path))


def test_vendored_schema_is_cff_1_2_0():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    assert schema["title"] == "Citation File Format"


def test_citation_cff_is_valid():
    citation = _load_citation()
    assert citation["cff-version"] == "1.2.0"
    errors = _errors(citation)
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors
    )


def test_unquoted_yaml_date_is_accepted_after_conversion():
    citation = _load_citation()
    citation["date-released"] = datetime.date(2026, 11, 24)
    assert _errors(citation), "a raw datetime.date must not pass the schema"
    assert not _errors(_dates_to_str(citation))


def _drop_cff_version(c):
    del c["cff-version"]


def _empty_authors(c):
    c["authors"] = []


def _wrong_cff_version(c):
    c["cff-version"] = "1.1.0"


def _bad_date(c):
    c["date-released"] = "2026-13-45"


def _impossible_date(c):
    # Matches the schema's date regex; only the "date" format checker rejects it.
    c["date-released"] = "2026-02-30"


def _unknown_license(c):
    c["license"] = "Not-A-License"


def _unknown_key(c):
    c["homepage"] = "https://example.org"


@pytest.mark.parametrize(
    "break_it",
    [
        _drop_cff_version,
        _empty_authors,
        _wrong_cff_version,
        _bad_date,
        _impossible_date,
        _unknown_license,
        _unknown_key,
    ],
)
def test_broken_citation_is_rejected(break_it):
    citation = copy.deepcopy(_load_citation())
    break_it(citation)
    assert _errors(citation), f"{break_it.__name__} should make CITATION.cff invalid"
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(citation)


def test_readme_bibtex_and_preferred_citation_agree_with_the_cff():
    """The README's BibTeX entry, the CFF's preferred-citation and the CFF itself name the same work."""
    import re

    citation = _load_citation()
    preferred = citation["preferred-citation"]
    bib = re.search(r"```bibtex\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.DOTALL).group(1)
    fields = dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?$", bib, flags=re.MULTILINE))
    assert fields["title"] == preferred["title"] == citation["title"]
    assert fields["version"] == preferred["version"] == citation["version"]
    assert int(fields["year"]) == preferred["year"] == int(citation["date-released"][:4])
    assert fields["author"] == "{" + preferred["authors"][0]["name"] + "}" == "{" + citation["authors"][0]["name"] + "}"
    assert fields["license"] == preferred["license"] == citation["license"]

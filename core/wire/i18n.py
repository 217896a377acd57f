"""The languages problems answer in: Accept-Language negotiation and gettext catalogues.

Citizens write to agencies in Kazakh and Russian, so every problem's ``title`` and ``detail``
answers in Kazakh (``kk``), Russian (``ru``) or English (``en``), as the request's
``Accept-Language`` prefers; English is the fallback, and the ``type`` URIs never change.

Messages are English templates with named fields (``"the petition is {status}"``). The
catalogues are ``core/wire/locale/<language>/LC_MESSAGES/qatysu.po``; ``make locale`` compiles them
to the ``.mo`` files read here, which are committed, and a test checks that they are up to date.
A message missing from a catalogue answers in English.

Numbers: a template with a *count field* (one of ``COUNT_FIELDS``: a number of things, such as
``{count}`` or ``{days}``; never an ordinal or an identifier such as ``{line}`` or ``{number}``)
is a plural entry of each catalogue, with every form its ``Plural-Forms`` declares, and is
looked up with ``ngettext``: Russian needs "1 день", "2 дня", "5 дней", "21 день". The form
follows the template's first count field; its ``msgid`` and ``msgid_plural`` are both the
English template, written to read for any number. A fraction takes the form the catalogue
gives 2 (Russian's "1,5 секунды", the plural in Kazakh and English), since gettext's plural
formulas count whole things only.
"""

from __future__ import annotations

import functools
import gettext
import string
from pathlib import Path

LANGUAGES = ("kk", "ru", "en")
DEFAULT_LANGUAGE = "en"
DOMAIN = "qatysu"
LOCALE_DIR = Path(__file__).parent / "locale"
# The fields that count things, so that the words around them agree with the number.
COUNT_FIELDS = frozenset({"count", "days", "depth", "limit", "received", "seconds"})


class Message(str):
    """A message inside a message (a field's error in a detail): a template with its own fields,
    translated and filled before it is inserted. As a ``str`` it is the English text."""

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, **params: object) -> Message:
        message = super().__new__(cls, template.format(**params) if params else template)
        message.template = template
        message.params = params
        return message


@functools.lru_cache(maxsize=1024)
def catalogue(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language``; English is the messages themselves."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])


def translate(message: str, language: str) -> str:
    return catalogue(language).gettext(message) if message else message


def translate_plural(message: str, number: int, language: str) -> str:
    """The form of the plural entry ``message`` that agrees with ``number`` in ``language``."""
    return catalogue(language).ngettext(message, message, number)


@functools.lru_cache(maxsize=1024)
def count_field(template: str) -> str | None:
    """The first count field of ``template``, which chooses its plural form; None if it has none.

    Kept per template (the templates are the code's own, and few); parsing one again costs a
    refused request a microsecond and a half."""
    for _, name, _, _ in string.Formatter().parse(template):
        if name in COUNT_FIELDS:
            return name
    return None


def plural_number(value: object) -> int:
    """The whole number that chooses a plural form for ``value``: a fraction (or anything that
    is not a number) chooses as 2 does."""
    try:
        number = float(str(value))
    except ValueError:
        return 2
    return int(number) if number.is_integer() else 2


def render(template: str, params: dict[str, object], language: str) -> str:
    """``template`` in ``language`` with its fields filled; English if a translation is broken."""
    if not params:
        return translate(template, language)
    values = {
        key: render(value.template, value.params, language) if isinstance(value, Message) else value
        for key, value in params.items()
    }
    field = count_field(template)
    try:
        if field is not None and field in values:
            translated = translate_plural(template, plural_number(values[field]), language)
        else:
            translated = translate(template, language)
        return translated.format(**values)
    except (KeyError, IndexError, ValueError):
        return template.format(**values)


def negotiate(accept_language: str | None) -> str:
    """The language of ``LANGUAGES`` that an Accept-Language header (RFC 9110) prefers most."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    best, best_weight = DEFAULT_LANGUAGE, 0.0
    for item in accept_language.split(",")[:32]:
        tag, _, parameters = item.strip().partition(";")
        weight = _weight(parameters)
        primary = tag.strip().lower().split("-", 1)[0]
        language = DEFAULT_LANGUAGE if primary == "*" else primary
        if language in LANGUAGES and weight > best_weight:
            best, best_weight = language, weight
    return best


def _weight(parameters: str) -> float:
    """The ``q`` parameter, 1 when absent; a malformed one counts as 0 (not acceptable)."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value)
            except ValueError:
                return 0.0
            return weight if 0.0 <= weight <= 1.0 else 0.0
    return 1.0

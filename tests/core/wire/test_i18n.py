"""Problems answer in Kazakh, Russian or English; the catalogues cover every message and are
compiled."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import io
import re
import string
import time
from typing import Any

import orjson
import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from core.host.app import create_app
from core.wire import errors
from core.wire.errors import Conflict, Problem, invalid
from core.wire.i18n import (
    COUNT_FIELDS,
    LANGUAGES,
    LOCALE_DIR,
    Message,
    catalogue,
    negotiate,
    render,
)
from tests.support.identities import JWT_SECRET, agency, auth, citizen, moderator, token
from tests.support.petitions import BASE, PETITION
from tests.support.services import REPO_ROOT

TRANSLATED = [language for language in LANGUAGES if language != "en"]
PROBLEM_CLASSES = {
    "Problem",
    *(name for name, value in vars(errors).items() if isinstance(value, type)),
    "UnregisteredAgency",
}
# The connection layer writes canned English bytes before any request is parsed.
UNTRANSLATED_MODULES = {"core/http/connections.py"}


def _po(language: str) -> Any:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "qatysu.po").open("rb") as handle:
        return read_po(handle)


def _msgid(message: Any) -> str:
    """A message's English template: its ``msgid``, the singular of a plural entry."""
    return message.id[0] if isinstance(message.id, tuple) else message.id


def _translations(message: Any) -> list[str]:
    """Every translated form of a message: one, or each form of a plural entry."""
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def _catalogue_messages(language: str) -> dict[str, list[str]]:
    return {_msgid(message): _translations(message) for message in _po(language) if message.id}


def _problem_types() -> set[type[Problem]]:
    seen: set[type[Problem]] = set()
    pending: list[type[Problem]] = [Problem]
    while pending:
        cls = pending.pop()
        seen.add(cls)
        pending.extend(cls.__subclasses__())
    return seen


def _message_arguments() -> list[tuple[ast.expr, str, dict[str, str]]]:
    """The message argument of every problem, field error and ``Message`` in core/ and plugins/,
    with its place and the string constants of its module."""
    found: list[tuple[ast.expr, str, dict[str, str]]] = []
    for path in sorted([*REPO_ROOT.glob("core/**/*.py"), *REPO_ROOT.glob("plugins/**/*.py")]):
        relative = path.relative_to(REPO_ROOT).as_posix()
        if relative in UNTRANSLATED_MODULES:
            continue
        tree = ast.parse(path.read_text())
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in PROBLEM_CLASSES or name in {"TokenRejected", "Message"}:
                argument = node.args[0]
            elif name in {"invalid", "field_error"} and len(node.args) >= 2:
                argument = node.args[1]
            else:
                continue
            found.append((argument, f"{relative}:{node.lineno}", constants))
    return found


def _source_messages() -> dict[str, str]:
    """Every literal problem detail and field message in core/ and plugins/, with its place: a
    string, or a module's string constant."""
    found: dict[str, str] = {}
    for argument, where, constants in _message_arguments():
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            found.setdefault(argument.value, where)
        elif isinstance(argument, ast.Name) and argument.id in constants:
            found.setdefault(constants[argument.id], where)
    return found


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# --- negotiation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("kk", "kk"),
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        ("kk-KZ", "kk"),
        ("en;q=0.5, kk;q=0.9", "kk"),
        ("fr, de;q=0.9", "en"),
        ("fr, ru;q=0.1", "ru"),
        ("*", "en"),
        ("ru;q=0, kk;q=0.2", "kk"),
        ("ru;q=abc", "en"),
        ("ru;q=2", "en"),
        ("RU", "ru"),
        (",,;q=,kk", "kk"),
    ],
)
def test_accept_language_picks_the_preferred_of_kk_ru_en(header: str | None, language: str) -> None:
    assert negotiate(header) == language


# --- catalogues --------------------------------------------------------------------------


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogue_is_up_to_date_with_its_po_file(language: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, _po(language))

    committed = (LOCALE_DIR / language / "LC_MESSAGES" / "qatysu.mo").read_bytes()

    assert compiled.getvalue() == committed, f"run `make locale` to compile {language}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_no_problem_type_lacks_a_translated_title(language: str, make_settings: Any) -> None:
    create_app(make_settings())  # loads every plugin, and any problem type a plugin defines
    titles = {cls.title for cls in _problem_types()}
    messages = _catalogue_messages(language)

    missing = sorted(title for title in titles if not all(messages.get(title, [""])))

    assert not missing, f"{language}: no translation of problem titles {missing}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_problem_message_in_the_source_is_translated(language: str) -> None:
    messages = _catalogue_messages(language)

    missing = {
        text: where
        for text, where in _source_messages().items()
        if not all(messages.get(text, [""]))
    }

    assert not missing, f"{language}: add these to the catalogue: {missing}"


def test_no_message_is_an_f_string() -> None:
    formatted = [where for argument, where, _ in _message_arguments() if _is_f_string(argument)]

    assert not formatted, f"templates with params instead, or no catalogue can match: {formatted}"


def _is_f_string(argument: ast.expr) -> bool:
    if isinstance(argument, ast.BinOp):
        return _is_f_string(argument.left) or _is_f_string(argument.right)
    return isinstance(argument, ast.JoinedStr)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_translation_keeps_the_fields_of_its_template(language: str) -> None:
    for template, forms in _catalogue_messages(language).items():
        for form in forms:
            assert _fields(form) == _fields(template), template


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_with_a_count_is_a_plural_entry_with_every_declared_form(
    language: str,
) -> None:
    catalog = _po(language)
    declared = catalog.num_plurals
    counted = [
        message for message in catalog if message.id and _fields(_msgid(message)) & COUNT_FIELDS
    ]
    wrong = [
        _msgid(message)
        for message in counted
        if not isinstance(message.id, tuple)
        or message.id[1] != message.id[0]
        or len(_translations(message)) != declared
        or not all(_translations(message))
    ]

    assert declared == {"kk": 2, "ru": 3}[language]
    assert len(counted) == 14
    assert not wrong, f"{language}: make these plural entries with {declared} forms: {wrong}"


def test_every_source_message_with_a_count_is_in_the_catalogues_as_a_plural_entry() -> None:
    counted = {text for text in _source_messages() if _fields(text) & COUNT_FIELDS}
    plural = {
        _msgid(message) for message in _po("ru") if message.id and isinstance(message.id, tuple)
    }

    assert counted - plural == set()


@pytest.mark.parametrize(
    ("days", "russian"),
    [
        (1, "не менее 1 календарного дня"),
        (2, "не менее 2 календарных дней"),
        (5, "не менее 5 календарных дней"),
        (21, "не менее 21 календарного дня"),
        (22, "не менее 22 календарных дней"),
        (25, "не менее 25 календарных дней"),
    ],
)
def test_russian_words_agree_with_the_number_of_days(days: int, russian: str) -> None:
    template = "the discussion must last at least {days} calendar days from when it opens"

    rendered = render(template, {"days": days}, "ru")

    assert rendered == f"обсуждение должно длиться {russian} с момента открытия"


@pytest.mark.parametrize(
    ("count", "russian"),
    [
        (1, "неверно заполнено 1 поле — x"),
        (2, "неверно заполнены 2 поля — x"),
        (5, "неверно заполнено 5 полей — x"),
        (21, "неверно заполнено 21 поле — x"),
        (22, "неверно заполнены 22 поля — x"),
        (25, "неверно заполнено 25 полей — x"),
    ],
)
def test_russian_words_agree_with_the_count_of_fields(count: int, russian: str) -> None:
    rendered = render(
        "{count} field(s) are invalid: {fields}", {"count": count, "fields": "x"}, "ru"
    )

    assert rendered == russian


@pytest.mark.parametrize(
    ("seconds", "russian"),
    [
        ("1", "1 секунду"),
        (2, "2 секунды"),
        (11, "11 секунд"),
        (1.5, "1.5 секунды"),
        (21.0, "21.0 секунду"),
    ],
)
def test_a_count_given_as_text_or_a_fraction_chooses_its_form(
    seconds: object, russian: str
) -> None:
    rendered = render("the token lives longer than {seconds} seconds", {"seconds": seconds}, "ru")

    assert rendered == f"срок действия токена превышает {russian}"


@pytest.mark.parametrize("days", [1, 2, 5, 21, 22, 25])
def test_kazakh_keeps_the_noun_singular_after_any_number(days: int) -> None:
    template = "the discussion must last at least {days} calendar days from when it opens"

    rendered = render(template, {"days": days}, "kk")

    assert (
        rendered == f"талқылау ашылған сәттен бастап кемінде {days} күнтізбелік күнге созылуы керек"
    )


def test_a_translation_with_a_wrong_field_falls_back_to_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken:
        def gettext(self, message: str) -> str:
            return "петиция {статус}"

        def ngettext(self, message: str, plural: str, number: int) -> str:
            return "петиция {статус}"

    monkeypatch.setattr("core.wire.i18n.catalogue", lambda language: Broken())

    assert render("the petition is {status}", {"status": "public"}, "ru") == (
        "the petition is public"
    )


# --- problems ------------------------------------------------------------------------------


def test_a_problem_renders_its_title_and_detail_in_the_asked_language() -> None:
    problem = Conflict(
        "the petition is {status}, not {expected}",
        params={"status": "public", "expected": "moderation"},
        extra={"petition_status": "public"},
    )

    english, russian = problem.body("en"), problem.body("ru")

    assert problem.detail == "the petition is public, not moderation"
    assert english["detail"] == "the petition is public, not moderation"
    assert russian == {
        "type": "/problems/conflict",
        "title": "Конфликт состояния",
        "status": 409,
        "detail": "петиция в статусе public, а не moderation",
        "petition_status": "public",
    }


def test_a_field_problem_translates_its_message_and_keeps_the_field_name() -> None:
    template = "the discussion must last at least {days} calendar days from when it opens"
    problem = invalid("closes_at", template, days=10)

    body = problem.body("kk")

    kazakh = "талқылау ашылған сәттен бастап кемінде 10 күнтізбелік күнге созылуы керек"
    assert problem.detail == (
        "closes_at: the discussion must last at least 10 calendar days from when it opens"
    )
    assert body["detail"] == f"closes_at: {kazakh}"
    assert body["errors"] == [{"field": "closes_at", "message": kazakh}]


def test_a_message_without_a_translation_answers_in_english() -> None:
    problem = Conflict("a message no catalogue has")

    assert problem.body("kk")["detail"] == "a message no catalogue has"
    assert problem.body("kk")["title"] == catalogue("kk").gettext("Conflict")


@pytest.mark.parametrize(
    ("language", "title", "detail"),
    [
        ("kk", "Табылмады", "мұндай петиция жоқ"),
        ("ru", "Не найдено", "такой петиции нет"),
        ("en", "Not found", "no such petition"),
        ("fr", "Not found", "no such petition"),
    ],
)
async def test_a_404_answers_in_the_accept_language(
    client: Any, language: str, title: str, detail: str
) -> None:
    response = await client.get(f"{BASE}/no-such-id", headers={"Accept-Language": language})

    assert response.status == 404
    assert response.headers["Content-Language"] == ("en" if language == "fr" else language)
    body = await response.json(content_type=None)
    assert body == {"type": "/problems/not-found", "title": title, "status": 404, "detail": detail}


async def test_a_conflict_with_fields_answers_in_russian(
    client: Any, approved_petition, moderate
) -> None:
    petition = await approved_petition(client)

    response = await moderate(client, petition["id"], "approve")
    russian = await client.post(
        f"{BASE}/{petition['id']}/moderation",
        json={"decision": "approve"},
        headers={**moderator(), "Accept-Language": "ru"},
    )

    assert response.status == russian.status == 409
    assert (await response.json(content_type=None))["detail"] == (
        "the petition is restricted, not moderation"
    )
    body = await russian.json(content_type=None)
    assert body["type"] == "/problems/conflict"
    assert body["title"] == "Конфликт состояния"
    assert body["detail"] == "петиция в статусе restricted, а не moderation"


async def test_a_validation_problem_answers_in_kazakh(client: Any) -> None:
    response = await client.post(
        BASE,
        json={**PETITION, "addressee": "nowhere"},
        headers={**citizen(), "Accept-Language": "kk"},
    )

    body = await response.json(content_type=None)
    assert response.status == 422
    assert body["title"] == "Деректер жарамсыз"
    assert body["detail"] == (
        "addressee: мұндай кодпен тіркелген мекеме жоқ; тізімі: GET /api/v1/agencies"
    )


async def test_router_problems_and_unregistered_agencies_answer_in_the_language(
    client: Any,
) -> None:
    missing = await client.get("/no/such/route", headers={"Accept-Language": "ru"})
    unknown = await client.get(BASE, headers={**agency("no-such-agency"), "Accept-Language": "kk"})

    assert (await missing.json(content_type=None))["title"] == "Не найдено"
    body = await unknown.json(content_type=None)
    assert body["type"] == "/problems/unregistered-agency"
    assert body["title"] == "Мекеме тізілімде жоқ"
    assert body["detail"] == "токендегі 'no-such-agency' мекемесі мекемелер тізілімінде жоқ"


def test_every_message_template_is_a_plain_format_string() -> None:
    for language in TRANSLATED:
        for template in _catalogue_messages(language):
            assert not re.search(r"\{[^}]*[!:][^}]*\}", template), template
    assert isinstance(Message("x"), str)


def _hand_signed(claims: dict[str, Any]) -> str:
    """An HS256 token signed with the test secret, whatever its claims hold."""

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    signed = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(claims)}"
    signature = hmac.new(JWT_SECRET.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    ("language", "detail"),
    [
        ("kk", "токендегі sub өрісі мәтіндік жол емес"),
        ("ru", "claim sub в токене не является строкой"),
        ("en", "the token's sub claim is not a string"),
    ],
)
async def test_a_rejected_token_answers_with_its_field_in_the_language(
    make_client: Any, language: str, detail: str
) -> None:
    client = await make_client()
    now = int(time.time())
    bearer = _hand_signed({"sub": 12345, "role": "citizen", "iat": now, "exp": now + 600})

    response = await client.post(
        BASE, json=PETITION, headers={**auth(bearer), "Accept-Language": language}
    )

    assert response.status == 401
    assert (await response.json(content_type=None))["detail"] == detail


@pytest.mark.parametrize(
    ("language", "detail"),
    [
        ("kk", "токен субъектісі жарамды ЖСН емес: ЖСН дәл он екі цифрдан тұрады"),
        ("ru", "субъект токена не является корректным ИИН: ИИН состоит ровно из двенадцати цифр"),
        ("en", "the token's subject is not a valid IIN: an IIN is exactly twelve digits"),
    ],
)
async def test_an_invalid_iin_answers_with_its_reason_in_the_language(
    make_client: Any, language: str, detail: str
) -> None:
    client = await make_client()

    response = await client.post(
        BASE,
        json=PETITION,
        headers={**auth(token("citizen", "12345")), "Accept-Language": language},
    )

    assert response.status == 401
    assert (await response.json(content_type=None))["detail"] == detail


async def test_a_wrong_role_answers_in_russian(make_client: Any) -> None:
    client = await make_client()

    response = await client.post(
        BASE, json=PETITION, headers={**moderator(), "Accept-Language": "ru"}
    )

    assert response.status == 403
    assert await response.json(content_type=None) == {
        "type": "/problems/forbidden",
        "title": "Доступ запрещён",
        "status": 403,
        "detail": "этот адрес доступен для ролей: citizen; роль в токене: moderator",
    }

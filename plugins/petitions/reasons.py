"""Why a moderator may reject a petition: the subjects a petition may not raise, by code.

The petitions law (the Administrative Procedural-Process Code as amended in 2023 "on public
control and administrative procedures", in force 4 April 2024) lists subjects that cannot be
the subject of a petition; press reports count 17 items. The codes below are the items named in
those reports (vlast.kz via eurasiatoday.ru, politic.kz via nur.kz, nur-news.net, mtrk.kz,
kaspi-info.com, 2023-2024): 15 of the 17. The law's own list was not reached, so the list and
its wording are unverified, and ``form_requirements`` stands for the law's requirements of
form and content, which no report lists.
"""

from __future__ import annotations

import enum

SOURCE = (
    "Administrative Procedural-Process Code, petitions (2023 amendments), article not checked; "
    "15 of 17 items from press reports (verify)"
)


class RejectionReason(enum.StrEnum):
    CONSTITUTIONAL_ORDER = "constitutional_order"
    TERRITORY_AND_BORDERS = "territory_and_borders"
    STATE_LANGUAGE = "state_language"
    ELECTIONS = "elections"
    REFERENDUMS = "referendums"
    JUSTICE = "justice"
    PROSECUTION = "prosecution"
    AMNESTY = "amnesty"
    NATIONAL_SECURITY = "national_security"
    SPECIAL_SERVICES = "special_services"
    STATE_SECRETS = "state_secrets"
    PRESIDENT = "president"
    PARLIAMENT = "parliament"
    APPOINTMENTS_AND_DISMISSALS = "appointments_and_dismissals"
    LAW_ENFORCEMENT_OPERATIONS = "law_enforcement_operations"
    AGENCY_FUNCTIONS = "agency_functions"
    FORM_REQUIREMENTS = "form_requirements"


LABELS: dict[RejectionReason, dict[str, str]] = {
    RejectionReason.CONSTITUTIONAL_ORDER: {
        "kk": "Конституциялық құрылыс және басқару нысаны",
        "ru": "Конституционный строй и форма правления",
        "en": "The constitutional order and the form of government",
    },
    RejectionReason.TERRITORY_AND_BORDERS: {
        "kk": "Әкімшілік-аумақтық құрылыс және мемлекеттік шекара",
        "ru": "Административно-территориальное устройство и государственная граница",
        "en": "The administrative-territorial structure and the state border",
    },
    RejectionReason.STATE_LANGUAGE: {
        "kk": "Тіл мәселелері",
        "ru": "Языковые вопросы",
        "en": "Questions of language",
    },
    RejectionReason.ELECTIONS: {
        "kk": "Сайлау",
        "ru": "Выборы",
        "en": "Elections",
    },
    RejectionReason.REFERENDUMS: {
        "kk": "Референдумдар",
        "ru": "Референдумы",
        "en": "Referendums",
    },
    RejectionReason.JUSTICE: {
        "kk": "Сот төрелігі және сот жүйесі",
        "ru": "Правосудие и судебная система",
        "en": "Justice and the courts",
    },
    RejectionReason.PROSECUTION: {
        "kk": "Прокуратура қызметі",
        "ru": "Деятельность прокуратуры",
        "en": "The prosecution service",
    },
    RejectionReason.AMNESTY: {
        "kk": "Рақымшылық",
        "ru": "Амнистия",
        "en": "Amnesty",
    },
    RejectionReason.NATIONAL_SECURITY: {
        "kk": "Ұлттық қауіпсіздік",
        "ru": "Национальная безопасность",
        "en": "National security",
    },
    RejectionReason.SPECIAL_SERVICES: {
        "kk": "Арнаулы мемлекеттік органдардың қызметі",
        "ru": "Деятельность специальных государственных органов",
        "en": "The special services",
    },
    RejectionReason.STATE_SECRETS: {
        "kk": "Мемлекеттік құпиялар",
        "ru": "Государственные секреты",
        "en": "State secrets",
    },
    RejectionReason.PRESIDENT: {
        "kk": "Қазақстан Республикасы Президентінің қызметі",
        "ru": "Деятельность Президента Республики Казахстан",
        "en": "The President of the Republic",
    },
    RejectionReason.PARLIAMENT: {
        "kk": "Парламент және оның палаталарының қызметі",
        "ru": "Деятельность Парламента и палат Парламента",
        "en": "Parliament and its chambers",
    },
    RejectionReason.APPOINTMENTS_AND_DISMISSALS: {
        "kk": "Лауазымды адамдарды тағайындау және қызметтен босату, оның ішінде әкімдер мен "
        "министрлердің отставкасы",
        "ru": "Назначение и освобождение должностных лиц, в том числе отставка акимов и министров",
        "en": "Appointing and dismissing officials, including the resignation of akims and "
        "ministers",
    },
    RejectionReason.LAW_ENFORCEMENT_OPERATIONS: {
        "kk": "Құқық қорғау органдарының қызметіне араласу",
        "ru": "Вмешательство в деятельность правоохранительных органов",
        "en": "Interference with the work of law-enforcement bodies",
    },
    RejectionReason.AGENCY_FUNCTIONS: {
        "kk": "Мемлекеттік органдардың функцияларын өзгерту",
        "ru": "Изменение функций государственных органов",
        "en": "Changing the functions of state bodies",
    },
    RejectionReason.FORM_REQUIREMENTS: {
        "kk": "Петиция нысаны мен мазмұнына қойылатын талаптарға сәйкес келмейді",
        "ru": "Петиция не соответствует требованиям к форме и содержанию",
        "en": "The petition does not meet the requirements of form and content",
    },
}


def labels(code: str | None) -> dict[str, str] | None:
    """The kk/ru/en labels of a stored reason code, or None when there is none."""
    if code is None:
        return None
    try:
        return dict(LABELS[RejectionReason(code)])
    except ValueError:
        return None


def described() -> str:
    """Every code with its English label, for the API description."""
    return "; ".join(f"{reason.value}: {LABELS[reason]['en']}" for reason in RejectionReason)

"""Why a moderator may reject a petition: the statutory grounds, by code, each with the act that
added it and the day it took force.

The petitions law is the Administrative Procedural-Process Code (АППК), arts. 90-1 to 90-5,
added by the Law of 2 October 2023; the Rules are Order No. 490-НҚ of 6 December 2023. The
2023 list counts 17 items in press reports; the codes up to ``FORM_REQUIREMENTS`` are the 15
the reports name, with ``form_requirements`` standing for the requirements of form and content.

On 3 December 2025 the Mazhilis passed amendments adding grounds (public morality, defamation,
material that could break inter-ethnic or inter-faith harmony, pardon beside amnesty,
propaganda of war, violence, extremism or separatism, promoting narcotics), reported to come
with the Law "On prevention of offences" signed about 30 December 2025. Their entry into force
is not confirmed, so they carry no in-force day and no rejection may cite them yet: give
``in_force`` its date once the published law is checked.

A rejection may cite only a ground in force on the day it is made, in the authority's time
zone (``require_in_force``).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from core.sdk import invalid

APPC = "https://adilet.zan.kz/rus/docs/K2000000350"
RULES = "https://adilet.zan.kz/rus/docs/V2300033734"
SOURCE = (
    f"АППК arts. 90-1 to 90-5 ({APPC}), added by the Law of 2 October 2023; Rules: Order "
    f"No. 490-НҚ of 6 December 2023 ({RULES}); checked 2026-12-07. The list of items is from "
    "press reports (vlast.kz via eurasiatoday.ru, politic.kz via nur.kz, nur-news.net, 2023-2024); "
    "the article's own list was not reached (stored-page search for АППК 90-4 and V2300033734 "
    "found nothing) (verify)"
)


@dataclass(frozen=True, slots=True)
class Ground:
    """A statutory ground: the act that added it and the day it took force (None: not
    confirmed in force, so it cannot be cited)."""

    act: str
    in_force: dt.date | None
    source: str


APPC_2023 = Ground(
    act="Law of 2 October 2023 amending the АППК (arts. 90-1 to 90-5)",
    # The day the petitions chapter took force, as the press reported it (epetition.kz opened).
    in_force=dt.date(2024, 4, 4),
    source=(
        f"{APPC}, checked 2026-12-07; in force 4 April 2024 per press reports (nur-news.net, "
        "April 2024); the law's own commencement clause was not reached (verify)"
    ),
)
OFFENCES_2025 = Ground(
    act='Law "On prevention of offences" (passed by the Mazhilis 3 December 2025, reported '
    "signed about 30 December 2025)",
    in_force=None,
    source=(
        "Mazhilis vote of 3 December 2025 per official statements and press, checked 2026-12-07; "
        "not confirmed in force: the signed law and its commencement clause were not reached"
    ),
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
    # The 2025 amendments: not confirmed in force.
    PUBLIC_MORALITY = "public_morality"
    DEFAMATION = "defamation"
    ETHNIC_AND_RELIGIOUS_HARMONY = "ethnic_and_religious_harmony"
    PARDON = "pardon"
    WAR_VIOLENCE_EXTREMISM_PROPAGANDA = "war_violence_extremism_propaganda"
    NARCOTICS_PROMOTION = "narcotics_promotion"


_ADDED_IN_2025 = {
    RejectionReason.PUBLIC_MORALITY,
    RejectionReason.DEFAMATION,
    RejectionReason.ETHNIC_AND_RELIGIOUS_HARMONY,
    RejectionReason.PARDON,
    RejectionReason.WAR_VIOLENCE_EXTREMISM_PROPAGANDA,
    RejectionReason.NARCOTICS_PROMOTION,
}
# Every ground, dated: the act that added it and when it took force.
GROUNDS: dict[RejectionReason, Ground] = {
    reason: OFFENCES_2025 if reason in _ADDED_IN_2025 else APPC_2023 for reason in RejectionReason
}


def in_force(reason: RejectionReason, day: dt.date) -> bool:
    """Whether ``reason`` may be cited on ``day``: it took force on or before it."""
    start = GROUNDS[reason].in_force
    return start is not None and start <= day


def require_in_force(reason: RejectionReason, day: dt.date) -> None:
    """A 422 on ``reason_code`` unless ``reason`` is in force on ``day``."""
    if not in_force(reason, day):
        raise invalid(
            "reason_code",
            "the ground {ground} is not in force on {day}",
            ground=reason.value,
            day=day.isoformat(),
        )


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
    RejectionReason.PUBLIC_MORALITY: {
        "kk": "Қоғамдық имандылыққа қайшы мазмұн",
        "ru": "Противоречие общественной нравственности",
        "en": "Content contrary to public morality",
    },
    RejectionReason.DEFAMATION: {
        "kk": "Жала жабу",
        "ru": "Клевета",
        "en": "Defamation",
    },
    RejectionReason.ETHNIC_AND_RELIGIOUS_HARMONY: {
        "kk": "Ұлтаралық және конфессияаралық келісімді бұзуы мүмкін мәліметтер",
        "ru": "Сведения, способные нарушить межнациональное и межконфессиональное согласие",
        "en": "Material that could break inter-ethnic or inter-faith harmony",
    },
    RejectionReason.PARDON: {
        "kk": "Кешірім жасау",
        "ru": "Помилование",
        "en": "Pardon",
    },
    RejectionReason.WAR_VIOLENCE_EXTREMISM_PROPAGANDA: {
        "kk": "Соғысты, зорлық-зомбылықты, экстремизмді немесе сепаратизмді насихаттау",
        "ru": "Пропаганда войны, насилия, экстремизма или сепаратизма",
        "en": "Propaganda of war, violence, extremism or separatism",
    },
    RejectionReason.NARCOTICS_PROMOTION: {
        "kk": "Есірткі құралдарын насихаттау",
        "ru": "Пропаганда наркотических средств",
        "en": "Promoting narcotics",
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
    return "; ".join(
        f"{reason.value}: {LABELS[reason]['en']}"
        + ("" if GROUNDS[reason].in_force else " (not confirmed in force; cannot be cited)")
        for reason in RejectionReason
    )

"""The demo gmina's taxes: three years of liabilities of every kind and the payments on them.

What the issue asked for: liabilities of every kind over 2024-2026; payments on time, late, partial
and too much; co-owned properties; a company paying monthly. Everything is planned first from the
demo taxpayers alone (random.Random(2026), so the demo is the same every time), then whatever is
missing is written: tax objects, decisions and liabilities are found again by their source_key, and
payments by their payment_ref ("demo:{taxpayer key}:{n}"), so loading twice adds nothing.

Who is who in the plan:
- P00001 Jan Kowalski co-owns his house with his wife (the first Kowalska among the demo people after
  his mother; she takes his address) and pays on time, except the third 2026 installment (15 September
  2026): on "today" (22 November 2026) his page shows arrears with interest. His wife paid one
  installment in 2025 (a payment by a co-owner counts for both).
- Fifteen more married couples (same surname) co-own their houses; the wife takes the husband's address.
- P00002 Zofia Kowalska, his mother, has her own house and paid one installment twice: an overpayment.
- F00001, the firm Jan represents, declares its property tax and pays each month on time.
"""
from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.demo.people import SURNAMES
from platforma.taxes import operations as ops
from platforma.taxes import rules
from platforma.taxes.models import Decision, Installment, Liability, LiabilityBasis, Posting, TaxObject, Taxpayer
from platforma.taxes.settings import interest_threshold, rate_table

SOURCE = "demo"
SEED = 2026
YEARS = (2024, 2025, 2026)
#: the demo's "today": the account pages of the demo read as of this day
TODAY = dt.date(2026, 11, 22)
#: no payment is dated after this day (the bank statements the demo "imported")
LAST_PAYMENT_DAY = dt.date(2026, 11, 20)
D = Decimal


# -- the demo gmina's resolutions --------------------------------------------------------------------

@dataclass(frozen=True)
class YearRates:
    """One year's rates in złoty per unit."""

    building_residential: Decimal  # budynki mieszkalne, per m² of usable area
    building_other: Decimal  # pozostałe budynki (garages, sheds), per m²
    building_business: Decimal  # budynki związane z działalnością gospodarczą, per m²
    land_other: Decimal  # grunty pozostałe (pod budynkiem mieszkalnym), per m²
    land_business: Decimal  # grunty związane z działalnością gospodarczą, per m²
    agricultural: Decimal  # podatek rolny, per hectare przeliczeniowy (2.5 dt of rye)
    forest: Decimal  # podatek leśny, per hectare (0.220 m³ of wood)
    vehicles: dict[str, Decimal]  # podatek od środków transportowych, per vehicle and year
    waste: Decimal  # opłata za gospodarowanie odpadami, per person and month


#: The demo gmina's resolutions (uchwały Rady Gminy Przykładowo w sprawie stawek podatków i opłaty
#: za gospodarowanie odpadami komunalnymi). The numbers are invented for the demo, in the range real
#: gminas set; only the demo loader reads them (a real instance keeps its rates in the dated settings).
RATES: dict[int, YearRates] = {
    2024: YearRates(D("1.19"), D("9.80"), D("28.78"), D("0.61"), D("1.34"), D("189.65"), D("101.95"),
                    {"ciężarowy": D("1050.00"), "ciężarowy12": D("2100.00"), "ciągnik": D("2480.00"),
                     "autobus": D("2050.00")}, D("31.50")),
    2025: YearRates(D("1.25"), D("10.20"), D("29.80"), D("0.64"), D("1.38"), D("150.03"), D("103.38"),
                    {"ciężarowy": D("1090.00"), "ciężarowy12": D("2190.00"), "ciągnik": D("2580.00"),
                     "autobus": D("2130.00")}, D("33.00")),
    2026: YearRates(D("1.29"), D("10.50"), D("30.50"), D("0.66"), D("1.42"), D("147.50"), D("105.10"),
                    {"ciężarowy": D("1120.00"), "ciężarowy12": D("2260.00"), "ciągnik": D("2660.00"),
                     "autobus": D("2200.00")}, D("35.00")),
}
VEHICLES = {
    "ciężarowy": ("Samochód ciężarowy 3,5-12 t", ("Iveco Daily", "Mercedes Atego", "MAN TGL")),
    "ciężarowy12": ("Samochód ciężarowy powyżej 12 t", ("Scania P410", "Volvo FM", "MAN TGS")),
    "ciągnik": ("Ciągnik siodłowy", ("DAF XF", "Scania R450", "Volvo FH")),
    "autobus": ("Autobus (30 miejsc)", ("Autosan Eagle", "Solbus SM12")),
}
DESCRIPTIONS = {
    "nieruchomosci": "Podatek od nieruchomości",
    "rolny": "Podatek rolny",
    "lesny": "Podatek leśny",
    "laczne": "Łączne zobowiązanie pieniężne",
    "srodki_transportowe": "Podatek od środków transportowych",
    "odpady": "Opłata za gospodarowanie odpadami komunalnymi",
}
#: declarations: their form, and the day range in the year they are filed (month, first day, last day)
DECLARATIONS = {
    "nieruchomosci": ("DN-1", (1, 8, 26)),
    "rolny": ("DR-1", (1, 8, 26)),
    "lesny": ("DL-1", (1, 5, 12)),  # the January installment is due on the 15th
    "srodki_transportowe": ("DT-1", (2, 2, 10)),
    "odpady": ("DO", (1, 2, 9)),  # paid quarterly in advance from 15 January
}
#: the waste fee's schedule under the resolution: quarterly, in advance, by the 15th
WASTE_SCHEDULE = {"frequency": "quarterly", "day": 15, "in_advance": True}


# -- the plan ------------------------------------------------------------------------------------

@dataclass
class ObjectPlan:
    key: str
    kind: str
    description: str
    location: str
    registration_number: str | None = None


@dataclass
class BasisPlan:
    object_key: str
    basis: Decimal
    unit: str
    rate: Decimal
    #: the tax on the object, exact (rounded to grosze when stored)
    amount: Decimal


@dataclass
class DocumentPlan:
    key: str
    number: str
    document_type: str
    year: int
    issued_on: dt.date | None
    delivered_on: dt.date | None
    #: the day the przypis is booked: delivery of a decision, filing of a declaration
    booked_on: dt.date


@dataclass
class LiabilityPlan:
    key: str
    tax_kind: str
    payer_type: str
    year: int
    #: (taxpayer key, role)
    parties: list[tuple[str, str]]
    document: DocumentPlan
    bases: list[BasisPlan]
    amount: Decimal
    installments: list[rules.ScheduledInstallment]
    period: tuple[dt.date, dt.date]

    @property
    def payer(self) -> str:
        return self.parties[0][0]


@dataclass
class PaymentPlan:
    taxpayer_key: str
    paid_on: dt.date
    amount: Decimal
    #: (liability key, installment number) named in the transfer title (art. 62 §1 OP)
    designated: list[tuple[str, int]]
    ref: str = ""


@dataclass
class Plan:
    objects: dict[str, ObjectPlan] = field(default_factory=dict)
    liabilities: list[LiabilityPlan] = field(default_factory=list)
    payments: list[PaymentPlan] = field(default_factory=list)
    #: co-owner key -> principal key (the co-owner takes the principal's address)
    spouses: dict[str, str] = field(default_factory=dict)


def _day(rng: random.Random, year: int, month: int, first: int, last: int) -> dt.date:
    return dt.date(year, month, rng.randint(first, last))


def _area(rng: random.Random, low: int, high: int) -> Decimal:
    return D(rng.randint(low, high))


def _hectares(rng: random.Random, low: float, high: float) -> Decimal:
    """Hectares with four places, as the land register gives them (no float reaches the amount)."""
    return D(rng.randint(int(low * 10_000), int(high * 10_000))) / 10_000


def _is_male(taxpayer: Taxpayer) -> bool:
    return bool(taxpayer.pesel) and int(taxpayer.pesel[9]) % 2 == 1


def _family(taxpayer: Taxpayer) -> int | None:
    for index, forms in enumerate(SURNAMES):
        if taxpayer.last_name in forms:
            return index
    return None


class _Numbers:
    """Decision numbers FN.3120.{n}.{year}, consecutive within each year."""

    def __init__(self) -> None:
        self.next: dict[int, int] = defaultdict(lambda: 1)

    def __call__(self, year: int) -> str:
        number = self.next[year]
        self.next[year] += 1
        return f"FN.3120.{number}.{year}"


def _decision(rng: random.Random, numbers: _Numbers, key: str, year: int, late: bool) -> DocumentPlan:
    issued = _day(rng, year, 2, 10, 20)
    delivered = issued + dt.timedelta(days=rng.randint(2, 10))
    if late:  # the letter came back and was delivered again (awizo): art. 47 §2 OP moves the 1st installment
        delivered = _day(rng, year, 3, 4, 12)
    return DocumentPlan(key, numbers(year), "decyzja", year, issued, delivered, delivered)


def _declaration(rng: random.Random, key: str, tax_kind: str, year: int, taxpayer_key: str) -> DocumentPlan:
    form, (month, first, last) = DECLARATIONS[tax_kind]
    filed = _day(rng, year, month, first, last)
    return DocumentPlan(key, f"{form}/{year}/{taxpayer_key}", "deklaracja", year, None, None, filed)


def _tax(tax_kind: str, payer_type: str, year: int, key: str, parties: list[tuple[str, str]], document: DocumentPlan,
         bases: list[BasisPlan], liable_from: dt.date | None = None) -> LiabilityPlan:
    """A tax: whole złoty (art. 63 OP), in installments by the statutory schedule."""
    share = D(1)
    if liable_from is not None:
        share = D(13 - liable_from.month) / 12
        bases = [BasisPlan(b.object_key, b.basis, b.unit, b.rate, b.amount * share) for b in bases]
    amount = rules.round_to_zloty(sum((b.amount for b in bases), D(0)))
    schedule = rules.installment_schedule(tax_kind, payer_type, amount, year, delivered=document.delivered_on,
                                          liable_from=liable_from)
    period = (liable_from or dt.date(year, 1, 1), dt.date(year, 12, 31))
    return LiabilityPlan(key, tax_kind, payer_type, year, parties, document, bases, amount, schedule, period)


def _house_objects(plan: Plan, rng: random.Random, key: str, location: str, *, outbuilding: int | None, land: bool,
                   outbuilding_name: str = "Budynek gospodarczy (garaż, komórka)") -> dict[str, Decimal]:
    """The house (and the land under it, a garage or shed) with areas that stay the same every year."""
    sizes = {"budynek": _area(rng, 60, 220)}
    plan.objects[f"{key}:budynek"] = ObjectPlan(f"{key}:budynek", "budynek", "Budynek mieszkalny", location)
    if land:
        sizes["grunt"] = _area(rng, 300, 2000)
        plan.objects[f"{key}:grunt"] = ObjectPlan(f"{key}:grunt", "grunt", "Grunt pod budynkiem", location)
    if outbuilding:
        sizes["gospodarczy"] = D(outbuilding)
        plan.objects[f"{key}:gospodarczy"] = ObjectPlan(f"{key}:gospodarczy", "budynek", outbuilding_name, location)
    return sizes


def _property_bases(key: str, sizes: dict[str, Decimal], rates: YearRates) -> list[BasisPlan]:
    bases = [BasisPlan(f"{key}:budynek", sizes["budynek"], "m2", rates.building_residential,
                       sizes["budynek"] * rates.building_residential)]
    if "grunt" in sizes:
        bases.append(BasisPlan(f"{key}:grunt", sizes["grunt"], "m2", rates.land_other, sizes["grunt"] * rates.land_other))
    if "gospodarczy" in sizes:
        bases.append(BasisPlan(f"{key}:gospodarczy", sizes["gospodarczy"], "m2", rates.building_other,
                               sizes["gospodarczy"] * rates.building_other))
    return bases


def _waste(plan: Plan, rng: random.Random, key: str, location: str) -> None:
    """The household's waste fee (deklaracja DO): rate × persons a month, quarterly in advance, in grosze."""
    persons = rng.randint(1, 6)
    plan.objects[f"{key}:odpady"] = ObjectPlan(f"{key}:odpady", "lokal_odpady", "Nieruchomość zamieszkała", location)
    for year in YEARS:
        rate = RATES[year].waste
        monthly = rate * persons
        schedule = rules.waste_fee_schedule(monthly, year, **WASTE_SCHEDULE)
        amount = sum((i.amount for i in schedule), D(0))  # in grosze, not rounded to złoty
        document = _declaration(rng, f"{key}:odpady:{year}", "odpady", year, key)
        basis = BasisPlan(f"{key}:odpady", D(persons), "osoba", rate, amount)
        plan.liabilities.append(LiabilityPlan(
            f"{key}:odpady:{year}", "odpady", "natural", year, [(key, "principal")], document, [basis],
            amount, schedule, (dt.date(year, 1, 1), dt.date(year, 12, 31)),
        ))


def build_plan(taxpayers: list[Taxpayer], rates: rules.RateTable, threshold: Decimal) -> Plan:
    """Everything the demo holds, from the demo taxpayers alone: the same plan on every run."""
    rng = random.Random(SEED)
    plan = Plan()
    numbers = _Numbers()
    natural = sorted((t for t in taxpayers if t.kind == "natural"), key=lambda t: t.source_key)
    legal = sorted((t for t in taxpayers if t.kind == "legal"), key=lambda t: t.source_key)
    by_key = {t.source_key: t for t in taxpayers}

    # -- couples: 10% of the people co-own their house with their spouse --
    couples: dict[str, str] = {}
    taken = {"P00001", "P00002"}
    jan = by_key.get("P00001")
    if jan is not None:
        wives = [t for t in natural if not _is_male(t) and t.source_key not in taken and _family(t) == _family(jan)]
        wives = wives or [t for t in natural if not _is_male(t) and t.source_key not in taken]
        couples["P00001"] = wives[0].source_key
        taken.add(wives[0].source_key)
    men = [t for t in natural if _is_male(t) and t.source_key not in taken]
    rng.shuffle(men)
    for man in men:
        if len(couples) >= len(natural) // 20:  # 2 × 5% of the people
            break
        family = _family(man)
        wife = next((t for t in natural if not _is_male(t) and t.source_key not in taken and family is not None
                     and _family(t) == family), None)
        if wife is None:
            continue
        couples[man.source_key] = wife.source_key
        taken |= {man.source_key, wife.source_key}
    plan.spouses = {wife: husband for husband, wife in couples.items()}

    # -- natural persons --
    profiles: dict[str, str] = {}
    for person in natural:
        key = person.source_key
        if key in plan.spouses:
            continue  # liable through the couple's decision, which names the husband first
        roll = rng.random()
        role = "farmer" if roll < 0.25 else "none" if roll < 0.31 else "owner"
        if key in ("P00001", "P00002") or (key in couples and role == "none"):
            role = "owner"
        parties = [(key, "principal")] + ([(couples[key], "co_owner")] if key in couples else [])
        location = person.address
        late_years = {year for year in YEARS if rng.random() < 0.05}
        # a few bought their house in 2024: taxed from the month after (art. 6 ust. 1 upol), part of the year
        bought = dt.date(2024, rng.randint(2, 9), 1) if role == "owner" and rng.random() < 0.03 else None
        if key in ("P00001", "P00002"):
            bought = None
        if role == "owner":
            outbuilding = rng.randint(18, 60) if rng.random() < 0.3 else None
            if key == "P00001":  # a large workshop: his installments are big enough for interest above 8.70 zł
                sizes = _house_objects(plan, rng, key, location, outbuilding=140, land=True,
                                       outbuilding_name="Budynek gospodarczy (warsztat)")
            else:
                sizes = _house_objects(plan, rng, key, location, outbuilding=outbuilding, land=True)
            for year in YEARS:
                liable_from = bought if bought and year == bought.year else None
                document = _decision(rng, numbers, f"{key}:nieruchomosci:{year}", year, year in late_years)
                if liable_from:  # the decision after the purchase, delivered before the September installment
                    issued = dt.date(year, liable_from.month, 1) + dt.timedelta(days=45 + rng.randint(0, 10))
                    document.issued_on = issued
                    document.delivered_on = document.booked_on = issued + dt.timedelta(days=rng.randint(2, 6))
                plan.liabilities.append(_tax("nieruchomosci", "natural", year, f"{key}:nieruchomosci:{year}", parties,
                                             document, _property_bases(key, sizes, RATES[year]), liable_from))
        elif role == "farmer":
            sizes = _house_objects(plan, rng, key, location, outbuilding=None, land=False)
            farmland = _hectares(rng, 1.5, 28)
            forest = _hectares(rng, 0.3, 12) if rng.random() < 0.7 else None
            village = person.city
            plan.objects[f"{key}:rolny"] = ObjectPlan(f"{key}:rolny", "grunt_rolny", "Grunty orne i łąki (gospodarstwo rolne)",
                                                       f"obręb {village}, dz. {rng.randint(10, 400)}/{rng.randint(1, 9)}")
            if forest:
                plan.objects[f"{key}:las"] = ObjectPlan(f"{key}:las", "las", "Las",
                                                         f"obręb {village}, dz. {rng.randint(400, 600)}")
            for year in YEARS:
                rates_ = RATES[year]
                bases = [BasisPlan(f"{key}:budynek", sizes["budynek"], "m2", rates_.building_residential,
                                   sizes["budynek"] * rates_.building_residential),
                         BasisPlan(f"{key}:rolny", farmland, "ha_przeliczeniowe", rates_.agricultural, farmland * rates_.agricultural)]
                if forest:
                    bases.append(BasisPlan(f"{key}:las", forest, "ha", rates_.forest, forest * rates_.forest))
                document = _decision(rng, numbers, f"{key}:laczne:{year}", year, year in late_years)
                plan.liabilities.append(_tax("laczne", "natural", year, f"{key}:laczne:{year}", parties, document, bases))
        if key in ("P00001", "P00002") or rng.random() < 0.92:
            _waste(plan, rng, key, location)
        profiles[key] = {"P00001": "jan", "P00002": "zofia"}.get(key) or _profile(rng)

    # -- legal persons: they declare; property tax monthly, some vehicles, a few farms and forests --
    registrations: set[str] = set()
    for firm in legal:
        key = firm.source_key
        location = firm.address
        building, land = _area(rng, 120, 2400), _area(rng, 400, 15000)
        plan.objects[f"{key}:budynek"] = ObjectPlan(f"{key}:budynek", "budynek", "Budynek związany z działalnością gospodarczą", location)
        plan.objects[f"{key}:grunt"] = ObjectPlan(f"{key}:grunt", "grunt", "Grunt związany z działalnością gospodarczą", location)
        vehicles = []
        if key != "F00001" and rng.random() < 0.4:
            for n in range(rng.randint(1, 4)):
                kind = rng.choice(sorted(VEHICLES))
                label, models = VEHICLES[kind]
                registration = f"PWA {rng.randint(10000, 99999)}"
                while registration in registrations:
                    registration = f"PWA {rng.randint(10000, 99999)}"
                registrations.add(registration)
                plan.objects[f"{key}:pojazd:{n + 1}"] = ObjectPlan(
                    f"{key}:pojazd:{n + 1}", "pojazd", f"{label}, {rng.choice(models)}", location, registration)
                vehicles.append((f"{key}:pojazd:{n + 1}", kind))
        extra = rng.random()
        farm = _hectares(rng, 8, 60) if extra < 0.08 else None
        forest = _hectares(rng, 15, 180) if 0.08 <= extra < 0.16 else None
        if farm:
            plan.objects[f"{key}:rolny"] = ObjectPlan(f"{key}:rolny", "grunt_rolny", "Grunty rolne", f"obręb {firm.city}, dz. {rng.randint(10, 400)}")
        if forest:
            plan.objects[f"{key}:las"] = ObjectPlan(f"{key}:las", "las", "Las", f"obręb {firm.city}, dz. {rng.randint(400, 600)}")
        for year in YEARS:
            rates_ = RATES[year]
            parties = [(key, "principal")]
            bases = [BasisPlan(f"{key}:budynek", building, "m2", rates_.building_business, building * rates_.building_business),
                     BasisPlan(f"{key}:grunt", land, "m2", rates_.land_business, land * rates_.land_business)]
            lkey = f"{key}:nieruchomosci:{year}"
            plan.liabilities.append(_tax("nieruchomosci", "legal", year, lkey, parties,
                                         _declaration(rng, lkey, "nieruchomosci", year, key), bases))
            if vehicles:
                lkey = f"{key}:srodki_transportowe:{year}"
                bases = [BasisPlan(obj, D(1), "szt", rates_.vehicles[kind], rates_.vehicles[kind]) for obj, kind in vehicles]
                plan.liabilities.append(_tax("srodki_transportowe", "legal", year, lkey, parties,
                                             _declaration(rng, lkey, "srodki_transportowe", year, key), bases))
            if farm:
                lkey = f"{key}:rolny:{year}"
                bases = [BasisPlan(f"{key}:rolny", farm, "ha_przeliczeniowe", rates_.agricultural, farm * rates_.agricultural)]
                plan.liabilities.append(_tax("rolny", "legal", year, lkey, parties, _declaration(rng, lkey, "rolny", year, key), bases))
            if forest:
                lkey = f"{key}:lesny:{year}"
                bases = [BasisPlan(f"{key}:las", forest, "ha", rates_.forest, forest * rates_.forest)]
                plan.liabilities.append(_tax("lesny", "legal", year, lkey, parties, _declaration(rng, lkey, "lesny", year, key), bases))
        profiles[key] = "on_time" if key == "F00001" else _profile(rng)

    plan.payments = _payments(plan, profiles, couples, rng, rates, threshold)
    return plan


def _profile(rng: random.Random) -> str:
    roll = rng.random()
    for limit, name in ((0.60, "on_time"), (0.75, "late"), (0.85, "partial"), (0.90, "overpay")):
        if roll < limit:
            return name
    return "no_2026"


# -- payments --------------------------------------------------------------------------------------

def _payments(plan: Plan, profiles: dict[str, str], couples: dict[str, str], rng: random.Random,
              rates: rules.RateTable, threshold: Decimal) -> list[PaymentPlan]:
    def interest(principal: Decimal, due: dt.date, day: dt.date) -> Decimal:
        return rules.arrears_interest(principal, due, day, rates, threshold).amount

    by_payer: dict[str, list[LiabilityPlan]] = defaultdict(list)
    for liability in plan.liabilities:
        by_payer[liability.payer].append(liability)

    payments: list[PaymentPlan] = []
    for payer, liabilities in by_payer.items():
        profile = profiles[payer]
        mine: list[PaymentPlan] = []

        def pay(day: dt.date, amount: Decimal, designated: list[tuple[str, int]], who: str = payer) -> None:
            if day <= LAST_PAYMENT_DAY and amount > 0:
                mine.append(PaymentPlan(who, day, amount, designated))

        for liability in sorted(liabilities, key=lambda l: (l.year, l.installments[0].due, l.key)):
            booked = liability.document.booked_on
            items = liability.installments

            def early(due: dt.date) -> dt.date:
                return max(due - dt.timedelta(days=rng.randint(0, 5)), booked)

            behaviour = profile
            if profile == "no_2026":
                behaviour = "none" if liability.year == 2026 else "on_time"
            if profile in ("jan", "zofia"):
                behaviour = "on_time"
            # many pay ahead in one transfer naming several installments: a household the whole year
            # by the first date, a firm a quarter's months by the first of them (all on time)
            roll = rng.random()
            if liability.payer_type == "natural":
                blocks = [items] if roll < (0.5 if liability.tax_kind == "odpady" else 0.3) else []
            else:
                quarters: dict[int, list] = defaultdict(list)
                for item in items:
                    quarters[(item.nominal_due.month - 1) // 3].append(item)
                blocks = list(quarters.values()) if roll < 0.5 and len(items) == 12 and payer != "F00001" else []
            if behaviour == "none":
                continue
            if behaviour == "on_time" and blocks and profile not in ("jan", "zofia"):
                for block in blocks:
                    pay(early(block[0].due), sum((i.amount for i in block), D(0)), [(liability.key, i.number) for i in block])
                continue
            for item in items:
                ref = [(liability.key, item.number)]
                if profile == "jan" and liability.tax_kind == "nieruchomosci":
                    if liability.year == 2026 and item.number == 3:
                        continue  # unpaid: arrears with interest on the demo's today
                    if liability.year == 2025 and item.number == 2:
                        pay(early(item.due), item.amount, ref, who=couples[payer])  # his wife paid this one
                        continue
                if behaviour == "on_time" or behaviour == "overpay":
                    pay(early(item.due), item.amount, ref)
                elif behaviour == "late":
                    day = item.due + dt.timedelta(days=rng.randint(5, 120))
                    with_interest = rng.random() < 0.8
                    pay(day, item.amount + (interest(item.amount, item.due, day) if with_interest else 0), ref)
                elif behaviour == "partial":
                    part = (item.amount * D(rng.randint(30, 80)) / 100).quantize(D(1))
                    if rng.random() < 0.3 and 0 < part < item.amount:
                        pay(early(item.due), part, ref)
                        if rng.random() < 0.5:
                            day = item.due + dt.timedelta(days=rng.randint(10, 90))
                            rest = item.amount - part
                            pay(day, rest + interest(rest, item.due, day), ref)
                    else:
                        pay(early(item.due), item.amount, ref)
            if profile == "zofia" and liability.year == 2025 and liability.tax_kind == "nieruchomosci":
                last = items[-1]  # paid twice: the second transfer is an overpayment
                pay(last.due + dt.timedelta(days=3), last.amount, [(liability.key, last.number)])
        if profile == "overpay":
            year_payments = [p for p in mine if p.paid_on.year == rng.choice((2024, 2025))]
            if year_payments:
                last = max(year_payments, key=lambda p: p.paid_on)
                last.amount += D(rng.choice((10, 20, 50, 100, 150))) + D(rng.randint(0, 99)) / 100
        shared = {l.key for l in liabilities if len(l.parties) > 1}
        joint = [p for p in mine if all(key in shared for key, _ in p.designated)]
        if payer in couples and profile != "jan" and rng.random() < 0.3 and joint:
            chosen = rng.choice(joint)  # the wife paid this one: it counts for both (art. 91 OP)
            chosen.taxpayer_key = couples[payer]
        payments.extend(mine)

    payments.sort(key=lambda p: (p.paid_on, p.taxpayer_key))
    counters: dict[str, int] = defaultdict(int)
    for payment in payments:
        counters[payment.taxpayer_key] += 1
        payment.ref = f"demo:{payment.taxpayer_key}:{counters[payment.taxpayer_key]}"
    return payments


# -- writing it --------------------------------------------------------------------------------------

def load_demo_taxes(session: Session) -> dict[str, int]:
    """Write what the plan holds and the database does not; returns what was created."""
    created = {"tax_objects": 0, "decisions": 0, "liabilities": 0, "installments": 0, "payments": 0}
    taxpayers = list(session.scalars(sa.select(Taxpayer).where(Taxpayer.source == SOURCE)))
    if not taxpayers:
        return created
    ids = {t.source_key: t.id for t in taxpayers}
    by_key = {t.source_key: t for t in taxpayers}
    rates, threshold = rate_table(session), interest_threshold(session, TODAY)
    plan = build_plan(taxpayers, rates, threshold)

    # a married couple lives together
    for wife, husband in plan.spouses.items():
        w, h = by_key[wife], by_key[husband]
        if (w.street, w.postal_code, w.city) != (h.street, h.postal_code, h.city):
            w.street, w.postal_code, w.city = h.street, h.postal_code, h.city

    objects = dict(session.execute(sa.select(TaxObject.source_key, TaxObject.id).where(TaxObject.source == SOURCE)).all())
    for obj in plan.objects.values():
        if obj.key not in objects:
            session.add(TaxObject(kind=obj.kind, description=obj.description, location=obj.location,
                                  registration_number=obj.registration_number, source=SOURCE, source_key=obj.key))
            created["tax_objects"] += 1
    if created["tax_objects"]:
        session.flush()
        objects = dict(session.execute(sa.select(TaxObject.source_key, TaxObject.id).where(TaxObject.source == SOURCE)).all())

    existing = set(session.scalars(sa.select(Liability.source_key).where(Liability.source == SOURCE)))
    decisions = {d.source_key: d for d in session.scalars(sa.select(Decision).where(Decision.source == SOURCE))} if len(
        existing) < len(plan.liabilities) else {}
    for liability in plan.liabilities:
        if liability.key in existing:
            continue
        doc = liability.document
        decision = decisions.get(doc.key)
        if decision is None:
            decision = Decision(number=doc.number, document_type=doc.document_type, year=doc.year, issued_on=doc.issued_on,
                                delivered_on=doc.delivered_on, source=SOURCE, source_key=doc.key)
            created["decisions"] += 1
        row = ops.assess_liability(
            session, tax_kind=liability.tax_kind, payer_type=liability.payer_type, year=liability.year,
            amount=liability.amount, parties=[(ids[k], role) for k, role in liability.parties],
            installments=[(i.nominal_due, i.amount) for i in liability.installments], booked_on=doc.booked_on,
            source=SOURCE, source_key=liability.key, decision=decision,
            description=f"{DESCRIPTIONS[liability.tax_kind]} {liability.year}", period=liability.period,
        )
        for basis in liability.bases:
            row.bases.append(LiabilityBasis(tax_object_id=objects[basis.object_key], basis=basis.basis, unit=basis.unit,
                                            rate=basis.rate, amount=rules.round_to_grosz(basis.amount)))
        created["liabilities"] += 1
        created["installments"] += len(liability.installments)
    session.flush()

    posted = set(session.scalars(sa.select(Posting.payment_ref).where(Posting.source == SOURCE, Posting.payment_ref.like("demo:%"))))
    missing = [p for p in plan.payments if p.ref not in posted]
    if missing:
        installments = {
            (key, number): installment_id for key, number, installment_id in session.execute(
                sa.select(Liability.source_key, Installment.number, Installment.id)
                .join(Installment, Installment.liability_id == Liability.id).where(Liability.source == SOURCE))
        }
        for payment in missing:
            ops.post_payment(session, taxpayer_id=ids[payment.taxpayer_key], amount=payment.amount, paid_on=payment.paid_on,
                             payment_ref=payment.ref, designated_installment_ids=[installments[d] for d in payment.designated],
                             source=SOURCE)
            created["payments"] += 1
    return created

"""Synthetic but realistic Polish people and businesses, with identifiers that pass their checksums
(computed here; tests check them with python-stdnum).

Deterministic for a given seed, so that the demo and the benchmarks are repeatable.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass


MALE_NAMES = (
    "Jan Piotr Krzysztof Andrzej Tomasz Paweł Marcin Michał Grzegorz Józef Marek Adam Łukasz Zbigniew Stanisław "
    "Jerzy Tadeusz Ryszard Dariusz Mariusz Kazimierz Wojciech Rafał Jakub Mateusz Kamil Bartosz Szymon Antoni Wiesław"
).split()
FEMALE_NAMES = (
    "Anna Maria Katarzyna Małgorzata Agnieszka Barbara Ewa Krystyna Elżbieta Magdalena Joanna Zofia Aleksandra "
    "Monika Teresa Danuta Natalia Julia Karolina Marta Beata Dorota Halina Jadwiga Alicja Iwona Grażyna Urszula Hanna Wanda"
).split()
#: surnames as (male form, female form)
SURNAMES = [
    ("Nowak", "Nowak"), ("Kowalski", "Kowalska"), ("Wiśniewski", "Wiśniewska"), ("Wójcik", "Wójcik"),
    ("Kowalczyk", "Kowalczyk"), ("Kamiński", "Kamińska"), ("Lewandowski", "Lewandowska"), ("Zieliński", "Zielińska"),
    ("Szymański", "Szymańska"), ("Woźniak", "Woźniak"), ("Dąbrowski", "Dąbrowska"), ("Kozłowski", "Kozłowska"),
    ("Jankowski", "Jankowska"), ("Mazur", "Mazur"), ("Kwiatkowski", "Kwiatkowska"), ("Krawczyk", "Krawczyk"),
    ("Piotrowski", "Piotrowska"), ("Grabowski", "Grabowska"), ("Nowakowski", "Nowakowska"), ("Pawłowski", "Pawłowska"),
    ("Michalski", "Michalska"), ("Nowicki", "Nowicka"), ("Adamczyk", "Adamczyk"), ("Dudek", "Dudek"),
    ("Zając", "Zając"), ("Wieczorek", "Wieczorek"), ("Jabłoński", "Jabłońska"), ("Król", "Król"),
    ("Majewski", "Majewska"), ("Olszewski", "Olszewska"), ("Jaworski", "Jaworska"), ("Wróbel", "Wróbel"),
    ("Malinowski", "Malinowska"), ("Pawlak", "Pawlak"), ("Witkowski", "Witkowska"), ("Walczak", "Walczak"),
    ("Stępień", "Stępień"), ("Górski", "Górska"), ("Rutkowski", "Rutkowska"), ("Michalak", "Michalak"),
    ("Sikora", "Sikora"), ("Ostrowski", "Ostrowska"), ("Baran", "Baran"), ("Duda", "Duda"),
    ("Szewczyk", "Szewczyk"), ("Tomaszewski", "Tomaszewska"), ("Pietrzak", "Pietrzak"), ("Marciniak", "Marciniak"),
    ("Wróblewski", "Wróblewska"), ("Zalewski", "Zalewska"), ("Jakubowski", "Jakubowska"), ("Jasiński", "Jasińska"),
    ("Zawadzki", "Zawadzka"), ("Sadowski", "Sadowska"), ("Bąk", "Bąk"), ("Chmielewski", "Chmielewska"),
    ("Włodarczyk", "Włodarczyk"), ("Borkowski", "Borkowska"), ("Czarnecki", "Czarnecka"), ("Sawicki", "Sawicka"),
]
#: the demo gmina's localities (fictional) with their postal codes
LOCALITIES = [
    ("Przykładowo", "62-100"), ("Wólka Przykładowska", "62-101"), ("Dębowa Góra", "62-101"), ("Zalesie", "62-102"),
    ("Nowa Wieś", "62-102"), ("Olszynka", "62-103"), ("Stare Pole", "62-103"), ("Łąkowo", "62-104"),
]
STREETS = [
    "ul. Główna", "ul. Kościelna", "ul. Szkolna", "ul. Polna", "ul. Leśna", "ul. Ogrodowa", "ul. Łąkowa",
    "ul. Słoneczna", "ul. Lipowa", "ul. Kwiatowa", "ul. Brzozowa", "ul. Mickiewicza", "ul. Kopernika",
    "ul. Wiejska", "ul. Krótka", "ul. Zielona", "ul. Sienkiewicza", "ul. Jana Pawła II", "ul. Rynek", "ul. Młyńska",
]
BUSINESS_KINDS = [
    ("Zakład Stolarski", "sp. z o.o."), ("Piekarnia", "s.c."), ("Przedsiębiorstwo Handlowe", "sp. z o.o."),
    ("Gospodarstwo Ogrodnicze", "sp. j."), ("Usługi Transportowe", "sp. z o.o."), ("Zakład Mechaniki Pojazdowej", "sp. k."),
    ("Agro-Serwis", "sp. z o.o."), ("Tartak", "S.A."), ("Spółdzielnia Mleczarska", ""), ("Hurtownia Budowlana", "sp. z o.o."),
]
BUSINESS_NAMES = ["Dąb", "Sosna", "Orzeł", "Wisła", "Kłos", "Jutrzenka", "Zorza", "Promień", "Mazur", "Relax", "Polan", "Granit"]


def pesel_for(birth: dt.date, serial: int, female: bool) -> str:
    """A PESEL for a birth date: the month carries the century, the 10th digit the sex."""
    month = birth.month + {1800: 80, 1900: 0, 2000: 20, 2100: 40, 2200: 60}[birth.year // 100 * 100]
    sex_digit = (serial % 5) * 2 + (0 if female else 1)
    body = f"{birth.year % 100:02d}{month:02d}{birth.day:02d}{serial // 5 % 1000:03d}{sex_digit}"
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    check = (10 - sum(int(d) * w for d, w in zip(body, weights)) % 10) % 10
    return body + str(check)


def nip_for(number: int) -> str:
    """A valid NIP: a tax-office prefix, six digits, and the mod-11 check digit (never 10)."""
    weights = (6, 5, 7, 2, 3, 4, 5, 6, 7)
    for attempt in range(20):  # the six-digit tail keeps numbers below 1,000,000 distinct
        body = f"{777 + (number + attempt) % 20:03d}{number % 1_000_000:06d}"
        check = sum(int(d) * w for d, w in zip(body, weights)) % 11
        if check != 10:
            return body + str(check)
    raise ValueError(number)


def regon_for(number: int) -> str:
    weights = (8, 9, 2, 3, 4, 5, 6, 7)
    body = f"{30 + number % 60:02d}{number % 1_000_000:06d}"
    check = sum(int(d) * w for d, w in zip(body, weights)) % 11 % 10
    return body + str(check)


@dataclass
class Person:
    first_name: str
    last_name: str
    female: bool
    birth: dt.date
    pesel: str
    street: str
    postal_code: str
    city: str


@dataclass
class Business:
    name: str
    nip: str
    regon: str
    street: str
    postal_code: str
    city: str


def _address(rng: random.Random) -> tuple[str, str, str]:
    city, postal = rng.choice(LOCALITIES)
    if city == "Przykładowo" or rng.random() < 0.4:
        street = f"{rng.choice(STREETS)} {rng.randint(1, 120)}"
        if rng.random() < 0.2:
            street += f"/{rng.randint(1, 30)}"
    else:
        street = f"{city} {rng.randint(1, 180)}"  # villages number houses without street names
    return street, postal, city


def people(count: int, seed: int = 2026, start: int = 0) -> list[Person]:
    """`count` distinct people (unique PESELs for indices below 600,000)."""
    rng = random.Random(seed + start)
    result = []
    for index in range(start, start + count):
        female = rng.random() < 0.52
        first = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
        male_form, female_form = rng.choice(SURNAMES)
        # (birth date, index mod 5000) pairs never repeat below 600,000 people, so PESELs are unique
        birth = dt.date(1935, 1, 1) + dt.timedelta(days=(index // 5000) % 120 + 120 * rng.randint(0, 218))
        street, postal, city = _address(rng)
        result.append(
            Person(first, female_form if female else male_form, female, birth, pesel_for(birth, index, female), street, postal, city)
        )
    return result


def businesses(count: int, seed: int = 2026, start: int = 0) -> list[Business]:
    rng = random.Random(seed * 7 + start)
    result = []
    for index in range(start, start + count):
        kind, form = rng.choice(BUSINESS_KINDS)
        name = f"{kind} „{rng.choice(BUSINESS_NAMES)}” {form}".strip()
        street, postal, city = _address(rng)
        result.append(Business(name, nip_for(index + 1), regon_for(index + 1), street, postal, city))
    return result

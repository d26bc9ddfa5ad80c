"""Creating an instance directory: a commented gmina.toml, generated secrets, a migrated database."""
from __future__ import annotations

import secrets
from pathlib import Path

TEMPLATE = '''# Konfiguracja instancji platformy dla jednej gminy.
# Każdy klucz można nadpisać zmienną środowiskową PLATFORMA__SEKCJA__KLUCZ,
# np. PLATFORMA__DATABASE__URL="postgresql://platforma@db/platforma".
# Po zmianie pliku uruchom ponownie aplikację; błędy konfiguracji są wypisywane przy starcie.

# true tylko w instancji demonstracyjnej: pozwala wczytać dane przykładowe (platforma demo load)
demo = {demo}

[gmina]
name = "{name}"
office_name = "{office_name}"
service_name = "e-Urząd"
# kod TERYT gminy: 7 cyfr (województwo, powiat, gmina, rodzaj)
teryt = "{teryt}"
nip = "{nip}"
regon = "{regon}"
# herb: plik SVG lub PNG; ścieżka względem katalogu instancji (pusty = herb zastępczy)
coat_of_arms = ""

[gmina.address]
street = "{street}"
postal_code = "{postal_code}"
city = "{city}"

[gmina.contact]
email = "{email}"
phone = "{phone}"
epuap = ""
website = ""
office_hours = "poniedziałek–piątek 7:30–15:30"

# kolory gminy (#RRGGBB); napis brand_text na tle brand musi mieć kontrast co najmniej 4,5:1 (WCAG 2.1 AA)
[gmina.colours]
brand = "#1d4f91"
brand_text = "#ffffff"
accent = "#f6b400"

# rachunki bankowe gminy (NRB: 26 cyfr, sprawdzana suma kontrolna)
[[gmina.bank_accounts]]
name = "Rachunek podatków i opłat lokalnych"
nrb = "{nrb}"
purpose = "podatki i opłaty lokalne"

# rachunek opłaty skarbowej: pokazywany przy wnioskach o zaświadczenie (cel musi zawierać „skarbow”);
# bez niego opłatę skarbową płaci się online albo w kasie, nigdy na rachunek podatków
# [[gmina.bank_accounts]]
# name = "Rachunek opłaty skarbowej"
# nrb = "..."
# purpose = "opłata skarbowa"

[server]
# wygenerowany losowo; nie udostępniaj go. Zmiana wyloguje wszystkich.
secret_key = "{secret_key}"
# publiczny adres portalu (w linkach w wiadomościach e-mail); https:// włącza ciasteczka Secure i HSTS
base_url = "http://127.0.0.1:5000"
# liczba serwerów pośredniczących (nginx) przed aplikacją, którym ufamy w nagłówkach X-Forwarded-*
trusted_proxies = 0
max_request_mb = 20
session_idle_minutes = 30
session_absolute_hours = 12

[database]
# SQLite (ścieżka względem katalogu instancji) albo PostgreSQL: "postgresql://uzytkownik:haslo@host/baza"
url = "sqlite:///platforma.sqlite3"

[mail]
# "smtp" wysyła przez serwer poczty; "file" zapisuje wiadomości .eml w katalogu file_dir (demo)
backend = "{mail_backend}"
host = "127.0.0.1"
port = 25
username = ""
password = ""
# none, starttls albo ssl
security = "none"
sender = "{sender}"
file_dir = "mail"

[jobs]
# "immediate": zadania (np. wysyłka poczty) w procesie aplikacji zaraz po zatwierdzeniu zmian;
# "redis": zadania przejmują procesy robocze Huey (platforma jobs worker)
backend = "immediate"
redis_url = "redis://127.0.0.1:6379/0"
max_attempts = 8

[security]
login_max_failures = 5
lockout_minutes = 15
ip_max_failures_per_hour = 50
password_min_length = 12
totp_issuer = ""

[payments]
# bramki płatności online oferowane mieszkańcom, w tej kolejności (platforma plugins list);
# ich opcje (identyfikatory sprzedawcy, klucze) w [plugins.options.IDENTYFIKATOR]
gateways = {gateways}
# nazwa odbiorcy w kodzie QR przelewu (najwyżej 20 znaków; pusta = nazwa gminy)
recipient_name = ""
# po tylu minutach bez potwierdzenia bramki płatność jest sprawdzana u bramki, a potem uznana za wygasłą
pending_expiry_minutes = 120

# rachunki indywidualne (wirtualne) podatników: NRB = cyfry kontrolne + numer rozliczeniowy banku
# + stała część gminy + numer podatnika (układ podaje bank prowadzący rachunek gminy)
[payments.virtual_accounts]
enabled = {va_enabled}
sort_code = "{va_sort_code}"
fixed = "{va_fixed}"
payer_check_digit = false

[taxes]
# true: ręczne księgowanie urzędnika czeka na zatwierdzenie przez innego urzędnika (zasada dwóch par oczu)
manual_posting_approval = false

[esign]
# plik PEM z certyfikatami zaufanych wystawców podpisów (kwalifikowane centra certyfikacji, pieczęć profilu
# zaufanego); ścieżka względem katalogu instancji; pusty = żaden podpis nie zostanie uznany za zaufany
trust_anchors = "{trust_anchors}"
# pieczęć elektroniczna urzędu, którą platforma opatruje urzędowe poświadczenia przedłożenia (UPO):
# klucz prywatny i certyfikat PEM (ścieżki względem katalogu instancji; oba albo żaden).
# platforma init tworzy samopodpisaną pieczęć DEWELOPERSKĄ (seal-key.pem, seal-cert.pem): w produkcji
# zastąp ją kwalifikowaną pieczęcią elektroniczną urzędu. Polecenie platforma esign verify ufa
# wystawcom z trust_anchors oraz samemu certyfikatowi pieczęci wskazanemu tutaj.
seal_key = "{seal_key}"
seal_certificate = "{seal_certificate}"

[episma]
# numer w rejestrze przesyłek wpływających: {{seq}} (kolejny numer w roku; {{seq:05d}} z zerami) i {{year}}
registration_pattern = "KO.{{seq}}.{{year}}"
# największy załącznik i łączna wielkość załączników pisma (MB); podpisane pismo musi się zmieścić
# w server.max_request_mb (załączniki w XML zajmują 4/3 swojej wielkości)
max_attachment_mb = 5
max_attachments_mb = 10
max_attachments = 20
# rodzaje plików przyjmowanych jako załączniki
allowed_attachments = ["pdf", "jpg", "png", "tif", "odt", "ods", "docx", "xlsx", "doc", "xls", "rtf", "txt", "xml"]
# wtyczka DocumentSink (włączona w [plugins]), do której kancelaria przekazuje pisma, np. "file_drop"
document_sink = "{document_sink}"
# przekazuj każde pismo od razu po wydaniu UPO
forward_on_receipt = false

[plugins]
# identyfikatory włączonych wtyczek (platforma plugins list)
enabled = {plugins_enabled}

# opcje wtyczek: [plugins.options.IDENTYFIKATOR]
{plugin_options}'''

DEMO_VALUES = {
    "demo": "true",
    "name": "Gmina Przykładowo",
    "office_name": "Urząd Gminy Przykładowo",
    "teryt": "3021052",
    "nip": "7794242429",
    "regon": "724242429",
    "street": "ul. Główna 1",
    "postal_code": "62-100",
    "city": "Przykładowo",
    "email": "urzad@example.com",
    "phone": "+48 61 000 00 00",
    "nrb": "49909000042001000000001234",
    "gateways": '["sandbox"]',
    "va_enabled": "true",
    "va_sort_code": "90900004",
    "va_fixed": "2001",
    "mail_backend": "file",
    "sender": "e-urzad@example.com",
}


#: a demonstration instance offers the sandbox gateway and individual accounts in a made-up bank range
DEMO_OVERRIDES = {"demo": "true", "gateways": '["sandbox"]', "va_enabled": "true"}


def _merged(values: dict[str, str] | None) -> dict[str, str]:
    return {**DEMO_VALUES, "demo": "false", "gateways": "[]", "va_enabled": "false", "seal_key": "",
            "seal_certificate": "", "trust_anchors": "", "document_sink": "", "plugins_enabled": "[]",
            "plugin_options": "", **(values or {})}


def render_config(values: dict[str, str] | None = None) -> str:
    merged = _merged(values)
    merged["secret_key"] = secrets.token_urlsafe(48)
    return TEMPLATE.format(**merged)


def create_instance(directory: Path, *, demo: bool) -> Path:
    """Write DIR/gmina.toml and a development seal; refuses to overwrite an existing configuration."""
    from platforma.esign.seal import create_development_seal

    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "gmina.toml"
    if config.exists():
        raise FileExistsError(str(config))
    values = dict(DEMO_OVERRIDES if demo else {})
    merged = _merged(values)
    key, certificate = create_development_seal(directory, office_name=merged["office_name"],
                                               gmina_name=merged["name"], nip=merged["nip"])
    values.update(seal_key=key.name, seal_certificate=certificate.name)
    if demo:
        values.update(_demo_letters(directory))
    config.write_text(render_config(values), encoding="utf-8")
    config.chmod(0o600)  # it holds the secret key and passwords
    return config


def _demo_letters(directory: Path) -> dict[str, str]:
    """A demo instance trusts a demonstration CA whose certificate signs as the demo resident
    (``platforma demo sign``), and forwards letters to an exchange folder of its own."""
    from platforma.demo.load import demo_resident_pesel
    from platforma.demo.signing import CA_FILE, create_demo_signer

    create_demo_signer(directory, given="Jan", surname="Kowalski", pesel=demo_resident_pesel())
    exchange = (directory / "ezd").resolve()
    exchange.mkdir(exist_ok=True)
    return {"trust_anchors": CA_FILE, "document_sink": "file_drop", "plugins_enabled": '["file_drop"]',
            "plugin_options": f'[plugins.options.file_drop]\n# katalog wymiany z systemem EZD\ndirectory = "{exchange}"\n'}

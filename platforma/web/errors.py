"""Error pages in Polish (400, 403, 404, 405, 413, 429, 500); never a traceback."""
from __future__ import annotations

import logging

from flask import Flask, render_template
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

MESSAGES = {
    400: (_l("Nieprawidłowe żądanie"), _l("Nie możemy obsłużyć tego żądania. Wróć do poprzedniej strony i spróbuj ponownie.")),
    403: (_l("Brak dostępu"), _l("Nie masz uprawnień do tej strony. Jeśli uważasz, że to błąd, skontaktuj się z urzędem.")),
    404: (_l("Nie ma takiej strony"), _l("Sprawdź, czy adres jest poprawny. Strona mogła zostać przeniesiona.")),
    405: (_l("Nieobsługiwana operacja"), _l("Ta strona nie obsługuje takiego działania.")),
    413: (_l("Za duży plik lub formularz"), _l("Przesłane dane są zbyt duże. Zmniejsz plik lub prześlij mniej załączników naraz.")),
    429: (_l("Zbyt wiele prób"), _l("Z tego adresu było zbyt wiele nieudanych prób. Odczekaj chwilę i spróbuj ponownie.")),
    500: (_l("Błąd serwera"), _l("Coś poszło nie tak po naszej stronie. Nic nie zostało zapisane. Spróbuj ponownie za chwilę.")),
}


def render_error(code: int, detail: str | None = None):
    title, message = MESSAGES.get(code, MESSAGES[500])
    return render_template("errors/error.html", code=code, title=title, message=detail or message), code


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return render_error(400, str(_l("Formularz wygasł albo został wysłany spoza serwisu. Odśwież stronę i wyślij go ponownie.")))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        return render_error(exc.code if exc.code in MESSAGES else 500 if exc.code >= 500 else 400)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http(exc)
        log.exception("unhandled error")
        return render_error(InternalServerError.code)

"""Informacja o nieruchomościach i obiektach budowlanych (IN-1, simplified; art. 6 ust. 6 upol): where the
property is, the title to it, and the areas and values the property tax is computed on."""
from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField

from platforma.episma.forms.base import Item, LetterForm
from platforma.episma.forms.fields import Amount, DateField, LandRegister, Optional, RadioField, Required, Text
from platforma.episma.forms.rules import normalise_kw
from platforma.web.forms import Form, RadioInput, TextInput

PURPOSES = (("submission", _l("złożenie informacji")), ("correction", _l("korekta informacji")))
TITLES = (
    ("owner", _l("właściciel")),
    ("co_owner", _l("współwłaściciel")),
    ("independent_possessor", _l("posiadacz samoistny")),
    ("perpetual_usufructuary", _l("użytkownik wieczysty")),
    ("dependent_possessor", _l("posiadacz zależny (np. dzierżawca, najemca)")),
)
#: the areas and the value: at least one must be given
MEASURES = ("land_business_m2", "land_water_ha", "land_other_m2", "buildings_residential_m2",
            "buildings_business_m2", "buildings_other_m2", "structures_value")


def taxpayer_objects(session, taxpayer) -> list:
    """The plots, buildings and structures the taxpayer's liabilities are assessed on."""
    if taxpayer is None or session is None:
        return []
    from platforma.taxes.models import LiabilityBasis, LiabilityParty, TaxObject

    return list(session.scalars(
        sa.select(TaxObject).where(TaxObject.kind.in_(("grunt", "budynek", "budowla")), TaxObject.id.in_(
            sa.select(LiabilityBasis.tax_object_id).join(
                LiabilityParty, LiabilityParty.liability_id == LiabilityBasis.liability_id)
            .where(LiabilityParty.taxpayer_id == taxpayer.id)
        )).order_by(TaxObject.id)
    ))


def _area(label, description, places: int = 2, unit: str = "m²", maximum: str = "999999999.99"):
    return StringField(label, widget=TextInput(), description=description,
                       validators=[Optional(), Amount(places=places, unit=unit, maximum=maximum)])


class PropertyInformationWebForm(Form):
    purpose = RadioField(_l("Cel złożenia"), widget=RadioInput(), choices=list(PURPOSES),
                         validators=[Required(_l("Wybierz cel złożenia informacji"))])
    obligation_date = DateField(
        _l("Data powstania lub zmiany obowiązku podatkowego"),
        description=_l("Na przykład dzień zakupu nieruchomości albo zakończenia budowy: 15 3 2026"),
        validators=[Required(_l("Wpisz datę powstania lub zmiany obowiązku podatkowego"))],
    )
    location = StringField(
        _l("Położenie nieruchomości"), widget=TextInput(), description=_l("Adres albo obręb i numer działki."),
        validators=[Required(_l("Wpisz położenie nieruchomości")), Text(300)],
    )
    kw = StringField(_l("Numer księgi wieczystej (nieobowiązkowo)"), widget=TextInput(),
                     description=_l("Na przykład PO1P/00012345/1"), validators=[Optional(), LandRegister()])
    parcels = StringField(_l("Numery działek ewidencyjnych (nieobowiązkowo)"), widget=TextInput(),
                          description=_l("Na przykład 125/4, 125/5"), validators=[Optional(), Text(300)])
    ownership = RadioField(_l("Tytuł władania nieruchomością"), widget=RadioInput(), choices=list(TITLES),
                           validators=[Required(_l("Wybierz tytuł władania nieruchomością"))])
    land_business_m2 = _area(_l("Grunty związane z prowadzeniem działalności gospodarczej (m²)"), _l("W metrach kwadratowych, np. 1250,5"))
    land_water_ha = _area(_l("Grunty pod wodami powierzchniowymi (ha)"), _l("W hektarach, do 4 miejsc po przecinku, np. 0,1250"),
                          places=4, unit="ha", maximum="99999.9999")
    land_other_m2 = _area(_l("Pozostałe grunty, w tym zajęte na cele mieszkalne (m²)"), _l("W metrach kwadratowych"))
    buildings_residential_m2 = _area(_l("Budynki mieszkalne: powierzchnia użytkowa (m²)"), _l("W metrach kwadratowych"))
    buildings_business_m2 = _area(_l("Budynki związane z działalnością gospodarczą: powierzchnia użytkowa (m²)"),
                                  _l("W metrach kwadratowych"))
    buildings_other_m2 = _area(_l("Pozostałe budynki: powierzchnia użytkowa (m²)"), _l("W metrach kwadratowych"))
    structures_value = StringField(
        _l("Budowle związane z działalnością gospodarczą: wartość (zł)"), widget=TextInput(),
        description=_l("Wartość, od której liczy się amortyzację, w złotych."), validators=[Optional(), Amount()],
    )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not any((self[name].data or "").strip() for name in MEASURES):
            self.land_business_m2.errors = [*self.land_business_m2.errors,
                                            _l("Podaj co najmniej jedną powierzchnię gruntów lub budynków albo wartość budowli")]
            return False
        return valid


class PropertyInformation(LetterForm):
    code = "informacja_in1"
    title = _l("Informacja o nieruchomościach i obiektach budowlanych (IN-1)")
    description = _l("Dla osób fizycznych: nabycie, zbycie lub zmiana nieruchomości, od której płaci się podatek.")
    namespace = "urn:platforma:wzor:informacja-in1:1"
    xsd_name = "informacja-in1-1.xsd"
    web_form = PropertyInformationWebForm
    sections = (
        (_l("Informacja"), (
            Item("purpose", "CelZlozenia", _l("Cel złożenia"), kind="choice", choices=PURPOSES),
            Item("obligation_date", "DataObowiazku", _l("Data powstania lub zmiany obowiązku"), kind="date"),
        )),
        (_l("Nieruchomość"), (
            Item("location", "Polozenie", _l("Położenie")),
            Item("kw", "NumerKW", _l("Numer księgi wieczystej")),
            Item("parcels", "NumeryDzialek", _l("Numery działek")),
            Item("ownership", "TytulWladania", _l("Tytuł władania"), kind="choice", choices=TITLES),
        )),
        (_l("Grunty"), (
            Item("land_business_m2", "GruntyDzialalnosc", _l("Związane z działalnością gospodarczą"), kind="decimal", unit="m²"),
            Item("land_water_ha", "GruntyPodWodami", _l("Pod wodami powierzchniowymi"), kind="decimal", places=4, unit="ha"),
            Item("land_other_m2", "GruntyPozostale", _l("Pozostałe, w tym mieszkalne"), kind="decimal", unit="m²"),
        )),
        (_l("Budynki (powierzchnia użytkowa)"), (
            Item("buildings_residential_m2", "BudynkiMieszkalne", _l("Mieszkalne"), kind="decimal", unit="m²"),
            Item("buildings_business_m2", "BudynkiDzialalnosc", _l("Związane z działalnością gospodarczą"), kind="decimal", unit="m²"),
            Item("buildings_other_m2", "BudynkiPozostale", _l("Pozostałe"), kind="decimal", unit="m²"),
        )),
        (_l("Budowle"), (
            Item("structures_value", "BudowleWartosc", _l("Wartość budowli związanych z działalnością gospodarczą"),
                 kind="decimal", unit="zł"),
        )),
    )

    def prefill(self, taxpayer, user, session, today):
        objects = [o for o in taxpayer_objects(session, taxpayer) if o.location]
        if objects:
            return {"location": objects[0].location[:300]}
        if taxpayer is not None and taxpayer.street:
            return {"location": taxpayer.address[:300]}
        return {}

    def hints(self, session, taxpayer, today):
        objects = taxpayer_objects(session, taxpayer)
        if not objects:
            return []
        listed = "; ".join(f"{o.description or o.kind}: {o.location}".strip(": ") for o in objects[:10])
        return [_("Przedmioty opodatkowania znane urzędowi: %(objects)s.", objects=listed)]

    def clean(self, data):
        if data["kw"]:
            data["kw"] = normalise_kw(data["kw"])
        return data

    def check(self, data):
        if not any(data[name] is not None for name in MEASURES):
            return ["element wnio:TrescDokumentu: podaj co najmniej jedną powierzchnię lub wartość budowli"]
        if data["kw"]:
            try:
                normalise_kw(data["kw"])
            except ValueError as exc:
                return [f"element wnio:NumerKW: {exc}"]
        return []

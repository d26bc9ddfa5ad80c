"""Imports every module's models so that the metadata (and Alembic) sees all tables."""
from platforma.accounts import models as accounts_models  # noqa: F401
from platforma.core import audit, jobs  # noqa: F401
from platforma.core import settings as dated_settings  # noqa: F401
from platforma.core.db import Base
from platforma.episma import models as episma_models  # noqa: F401
from platforma.payments import models as payments_models  # noqa: F401
from platforma.taxes import models as taxes_models  # noqa: F401
from platforma.web import models as web_models  # noqa: F401

metadata = Base.metadata

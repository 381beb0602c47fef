"""The Flask extension objects, created unbound and initialised in ``create_app``."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from server.db import Base
from server.errors import JSONErrorApi

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = JSONErrorApi()

__all__ = ["api", "db", "migrate"]

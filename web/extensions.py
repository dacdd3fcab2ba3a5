"""Flask extensions, created unbound and bound in the app factory."""
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from engine.models import Base

# Handing over the metadata rather than `model_class=Base`: Flask-SQLAlchemy 3.1 refuses a base
# that has a `type_annotation_map` (pallets-eco/flask-sqlalchemy#1361).  Same tables either way.
db = SQLAlchemy(metadata=Base.metadata)
login_manager = LoginManager()
csrf = CSRFProtect()

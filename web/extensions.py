"""Flask extensions, created unbound and bound in the app factory."""
from flask_sqlalchemy import SQLAlchemy

from engine.models import Base

db = SQLAlchemy(model_class=Base)

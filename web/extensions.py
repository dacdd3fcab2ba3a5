"""Flask extensions, created unbound and bound in the app factory."""
from flask_sqlalchemy import SQLAlchemy

from engine.models import Base

# Share Base's tables, not Base itself: Flask-SQLAlchemy 3.1 cannot subclass a base that has a
# ``type_annotation_map`` (pallets-eco/flask-sqlalchemy#1361); the web layer needs only db.session.
db = SQLAlchemy(metadata=Base.metadata)

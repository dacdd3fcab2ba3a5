"""Tables of the "1+100" domain (organisations, people, campaigns...), on the engine's ``Base``.

Empty until the organisation model lands; imported by the Alembic environment so that every
domain table is migrated with the engine's.
"""

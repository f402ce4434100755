"""PostgreSQL access: SQLAlchemy 2 async engine, sessions, ORM models and Alembic migrations."""

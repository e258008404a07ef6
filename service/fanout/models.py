"""SQLAlchemy declarative mapped classes for the ``(id, name)`` data tables."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "DataRow", "data_row_model"]


class Base(DeclarativeBase):
    """Declarative base of the service's ORM models."""


class DataRow(Base):
    """Columns shared by every data table: ``id INT PRIMARY KEY, name VARCHAR(255)``."""

    __abstract__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))


@cache
def data_row_model(table: str) -> type[DataRow]:
    """The mapped class of the data table ``table`` (made once per table name)."""
    class_name = "".join(part.capitalize() for part in table.split("_")) + "Row"
    return type(class_name, (DataRow,), {"__tablename__": table})

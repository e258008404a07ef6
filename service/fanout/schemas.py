"""What the fan-out's endpoints answer, for the OpenAPI document (with examples)."""

from __future__ import annotations

from pydantic import BaseModel, Field, RootModel

__all__ = ["Health", "Overloaded", "Ready", "Rows"]


class RowModel(BaseModel):
    id: int = Field(examples=[1])
    name: str = Field(examples=["Test 1"])


class Rows(RootModel[list[RowModel]]):
    """Every row of the sources that answered in time, sorted by id (Server-Timing says
    how each source ended)."""


class Overloaded(BaseModel):
    error: str = Field(examples=["overloaded"])
    message: str = Field(examples=["the service is at capacity (the queue is full); retry later"])
    retry_after_s: int = Field(examples=[1])


class Admission(BaseModel):
    limit: int = Field(examples=[32])
    in_flight: int = Field(examples=[3])
    queued: int = Field(examples=[0])
    admitted_total: int = Field(examples=[1200])
    shed_total: int = Field(examples=[0])


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    admission: Admission


class SourceState(BaseModel):
    status: str = Field(examples=["ok"])
    elapsed_ms: float = Field(examples=[1.2])
    error: str | None = Field(None, examples=["ConnectionRefusedError"])


class Ready(BaseModel):
    status: str = Field(examples=["ready"], description="`ready`, or `degraded` (503)")
    sources: dict[str, SourceState]

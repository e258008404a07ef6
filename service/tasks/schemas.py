"""What the task API's endpoints take and give, for the OpenAPI document (with examples)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ApiErrorBody", "NewTaskBody", "TaskBody", "TaskPage", "TasksCreated"]


class NewTaskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(
        examples=[
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
        ],
        description="The image file, base64 (JPEG, PNG, GIF, BMP, WebP or TIFF;"
        " at most MAX_IMAGE_BYTES decoded and MAX_IMAGE_PIXELS pixels).",
    )
    meta: str = Field("", examples=["scan of page 3"], description="At most 10,000 characters.")


class TaskBody(BaseModel):
    id: int = Field(examples=[7])
    meta: str = Field(examples=["scan of page 3"])
    status: str = Field(examples=["free"], description="free or taken")
    created_at: str = Field(examples=["2026-12-01T09:30:00.123456+00:00"])
    image_url: str = Field(examples=["/api/tasks/7/image"])
    image_type: str = Field(examples=["image/png"])


class TaskPage(BaseModel):
    tasks: list[TaskBody]
    next_cursor: str | None = Field(
        examples=["41"], description="Pass as ?cursor= for the next page; null on the last."
    )


class TasksCreated(BaseModel):
    total: int = Field(examples=[1234], description="Never decreases.")


class ApiErrorBody(BaseModel):
    error: str = Field(examples=["invalid_image"])
    detail: str = Field(examples=["image: not an image"])

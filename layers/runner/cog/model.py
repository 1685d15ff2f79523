"""``BaseModel``: structured outputs declared with class annotations, made into dataclasses automatically."""

from __future__ import annotations

from dataclasses import dataclass, is_dataclass
from typing import Any


class BaseModel:
    """Subclasses become dataclasses: ``class Out(BaseModel): text: str`` gives ``Out(text="hi")``.

    Pass ``auto_dataclass=False`` in the class statement to manage the dataclass decoration yourself;
    other class keywords (``frozen=True``, ``kw_only=True``...) are handed to ``dataclass()``.
    """

    def __init_subclass__(cls, *, auto_dataclass: bool = True, **dataclass_options: Any) -> None:
        super().__init_subclass__()
        if not issubclass(cls.__bases__[0], BaseModel):
            raise TypeError(f'Primary base class of "{cls.__name__}" must inherit from BaseModel')
        for mixin in cls.__bases__[1:]:
            if is_dataclass(mixin):
                raise TypeError(f'Cannot mix in dataclass "{mixin.__name__}" while inheriting from BaseModel')
        if auto_dataclass:
            dataclass(**dataclass_options)(cls)

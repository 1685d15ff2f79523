# ruff: noqa
from base import Base


class Predictor(Base):
    def setup(self) -> None:
        pass

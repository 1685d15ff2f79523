class Handle:
    """A third-party class that is not a BaseModel: only usable as `Annotated[Handle, cog.Opaque]`."""

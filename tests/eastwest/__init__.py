"""A plain asyncio service calling another through the in-process mesh client."""

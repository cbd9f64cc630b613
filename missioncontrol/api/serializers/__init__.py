"""Shapes of the API's resources (API.md) and the inputs the services take,
one module per concept. Inputs only check types and sizes; the services
decide everything else."""

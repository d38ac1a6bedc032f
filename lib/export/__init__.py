"""What leaves the project: the selected networks as checkpoints with an index (`models`), as NIR
files (`nir_export`), and a sweep's records packed small enough to commit (`archive`)."""

"""txgen: pycndp traffic generator (CNDP txgen equivalent)."""

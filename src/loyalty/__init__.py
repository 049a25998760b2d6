"""Customer-loyalty analytics warehouse: raw-data contract, data generator, build orchestration."""

__version__ = "0.1.0"

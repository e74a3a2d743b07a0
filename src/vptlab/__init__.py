"""vptlab: when does visual prompt tuning beat full fine-tuning, and why?"""

__version__ = "0.1.0"

__all__ = ["__version__"]

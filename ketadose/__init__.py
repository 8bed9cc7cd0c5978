"""ketadose: weight-based ketamine session dosing, checked against a clinic's safety limits.

Decision support for licensed clinicians. The shipped protocol and limit libraries are
unapproved examples that a clinic must review before use.
"""

__version__ = "0.1.0"

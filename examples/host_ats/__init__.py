"""Acme Recruit: the reference host ATS that the demo and the tests run the add-on in.

``flask --app examples.host_ats seed`` fills it with demo data;
``flask --app examples.host_ats run`` serves it.
"""

from examples.host_ats.app import create_app

__all__ = ["create_app"]

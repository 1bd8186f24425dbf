"""Integrated Email: an ATS add-on that connects each recruiter's own mailbox."""

from plugin.addon import IntegratedEmail

__version__ = "0.1.0"
__all__ = ["IntegratedEmail", "__version__"]

"""policyhook: runtime CPU policy for libvirt domains.

This module is imported by the hook on libvirtd's critical path: keep it free of
imports.
"""

__version__ = "0.1.0"

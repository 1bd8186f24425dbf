"""Example hosts that run the Integrated Email add-on."""

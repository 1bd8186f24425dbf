"""HTTP handlers, one module per page group; ``blueprint.py`` holds the URL table.

Routes only read and check input, call one use case, and render. Nothing outside
this package imports it but the add-on object, which registers the blueprint.
"""
